"""What the edges share above storage: taking a post in (`ingest`), shop changes and the
republishing of their live posts, the cached shop directory, and `supervised`, which every
long-running loop runs under. May import `storage` and everything below it.
"""
