"""What several commands share (no command imports another): how a command ends, exit codes and
usage errors included (:mod:`.exits`), and the options and output they have in common
(:mod:`.options`)."""
