"""Channel-agnostic conversation core; talks to the outside only through core.ports."""
