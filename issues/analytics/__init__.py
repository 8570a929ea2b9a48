"""How each issue did: opens, clicks, web views and what people did after."""
