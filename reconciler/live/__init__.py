"""The observed state: what KMS reports (:mod:`.model`), read through boto3, paged and concurrent
(:mod:`.reader`, with its origin cache :mod:`.cache`), and shown at a glance (:mod:`.status`)."""
