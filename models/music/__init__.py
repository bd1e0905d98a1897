"""Music for video: theory tables, the structure planner, the arranger, instrumentation presets, the per-bar
roll codec, SoundFont rendering and mastering. Each concern is one module; import them directly."""
