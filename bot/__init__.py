"""数字社工: the digital social worker of a city district."""
