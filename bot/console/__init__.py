"""The staff console: a server-rendered web app under /console for grid workers, supervisors and admins.

    create_console_router(service)  the routes, mounted into the web app (bot/server.py)
    ConsoleAuth / set_password      login links, passwords, sessions, CSRF (auth.py)
    KbAdmin                         knowledge-base upload, removal and background re-ingest (kb_admin.py)
    ConsoleLinkCommand, KnowledgeChatAdmin
                                    the chat commands /console, /reingest and document uploads (chat.py)
"""
