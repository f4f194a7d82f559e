"""The review bench: the main window and its parts (queue, Modify editor, profile picker, shortcuts)."""
