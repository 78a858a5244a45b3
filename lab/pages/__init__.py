"""Web pages built the ways real sites build them, for the browser checks (#11).

Each module here adds hosts to a `lab.TestInternet` whose pages show
their media or their removal notice the way one family of real sites does:
late swaps and endless spinners, lazy loading, notices in iframes, shadow
roots and overlays, inline (``data:``/``blob:``) images, hash-routed apps,
consent walls. They differ on purpose from the JS gallery of
`lab.gallery`. Every media body holds a caller's marker so that the
safety tests can prove it was never stored.
"""
