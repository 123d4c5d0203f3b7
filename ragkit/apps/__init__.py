"""Applications built on the core (the catalog bot, the web page). The core never imports this package."""
