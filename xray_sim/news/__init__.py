"""A loopback fake news feed: `content` generates deterministic crypto stories and renders them,
`feed` serves them over HTTP (`start_fake_feed`, or `python -m xray_sim.news.feed --port 8765`)."""
