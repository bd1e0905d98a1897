"""The Gradio studio: ``app`` builds the Blocks and launches; one module per tab; ``common`` holds the shared
widgets, progress and error plumbing. Core code never imports gradio; this package does."""
