"""Reference solutions to the lessons' exercises (open them when you are stuck)."""
