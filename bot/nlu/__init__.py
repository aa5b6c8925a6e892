"""Models that tell a question from a request (implementations of core.intents.QuestionRequestModel)."""
