"""Plans: the desired state built from manifests (:mod:`.build`, :mod:`.desired`), which live key a
declared key means (:mod:`.matching`), the pure planner (:mod:`.planner`), the plan as data
(:mod:`.model`), how it is made (:mod:`.make`), saved and loaded (:mod:`.files`) and rendered
(:mod:`.render`)."""
