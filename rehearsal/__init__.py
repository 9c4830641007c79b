"""`make rehearse`: the whole app deployed into a local AWS emulator, its loop driven there."""
