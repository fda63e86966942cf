"""Applying a plan: the run (:mod:`.run`), the checks that refuse it before anything changes
(:mod:`.guards`), the executor that is the only writer to AWS (:mod:`.executor`), its waits,
the journal and progress of a run, the apply lock and signal handling."""
