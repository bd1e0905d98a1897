"""Jobs: one render function per subcommand, the scene, the cheap checks run before any model loads, and the
batch runtime. Every front end (CLI, studio, batch workers, demo) calls this layer; it never imports them."""
