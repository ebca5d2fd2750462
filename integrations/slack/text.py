"""Text Deplite posts to Slack.

Slack reads `&`, `<` and `>` in message text as its own markup (`<!channel>`, `<@U123>`,
`<https://…|label>`), so a param like `X=<!channel>` echoed as is would make the bot ping
the whole channel. Every piece of text a user controls is escaped as Slack's formatting
reference asks (only these three characters) before it goes into a message.
"""

from __future__ import annotations


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
