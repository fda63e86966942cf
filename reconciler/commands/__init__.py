"""The commands: one module per verb, each defining its click command and calling into the domain
(manifest, plan, live, apply, adopt). :mod:`reconciler.cli` assembles them into the group; what
several of them share is in :mod:`.support`. No command imports another."""
