"""Relational storage through SQLAlchemy 2: the engine, and the dialogue state store."""
