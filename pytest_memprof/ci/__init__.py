"""CI outputs built from a test session's memory results: baselines, JUnit, GitHub."""
