"""The staff console: a server-rendered web app under /console for grid workers, supervisors and admins.

    app.create_console_router(service)  the routes, mounted into the web app (bot/server.py)
    auth.ConsoleAuth, auth.set_password login links, passwords, sessions, CSRF
    kb_admin.KbAdmin                    knowledge-base upload, removal and background re-ingest
    chat.ConsoleLinkCommand, chat.KnowledgeChatAdmin
                                        the chat commands /console, /reingest and document uploads
    cli.password_command                python -m bot admin password --staff ID

Nothing is imported here: bot.migrations imports console.models without pulling in the web stack.
"""
