"""`make demo`: the whole job end to end, offline (composes trainer, broker and worker; see __main__)."""
