"""Case work beyond tickets: the visit register (智能采集) and mediation cases (矛盾调处)."""
