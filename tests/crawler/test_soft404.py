from crawler.soft404 import NotFoundProbes, origin, probe_url
from crawler.verdict import NotFoundFingerprint


def test_probe_url_is_a_sibling_with_the_same_extension():
    url = probe_url("http://h.test:8080/a/b/photo.JPG?x=1", token=lambda: "abc")
    assert url == "http://h.test:8080/a/b/hostwatch-probe-abc.JPG"
    assert probe_url("https://h.test/view", token=lambda: "t") == \
        "https://h.test/hostwatch-probe-t"


def test_items_wait_for_the_one_probe_of_their_host():
    probes: NotFoundProbes[str] = NotFoundProbes()
    assert probes.wait("http://h.test/1.jpg", "one") is True  # send a probe
    assert probes.wait("http://h.test/2.jpg", "two") is False  # already out
    assert probes.wait("http://other.test/2.jpg", "three") is True
    assert probes.known("http://h.test/x") == (False, None)
    fp = NotFoundFingerprint(200, "text/html", "ab", 10, None)
    assert probes.finish("http://h.test/hostwatch-probe-x.jpg", fp) == ["one", "two"]
    assert probes.known("http://h.test/9.jpg") == (True, fp)
    assert probes.pending() == 1
    assert origin("http://h.test:81/x") == "http://h.test:81"


def test_origin_of_urls_with_query_or_fragment_and_no_path():
    assert origin("https://h.test?x=1") == "https://h.test"
    assert origin("http://h.test:8080#frag") == "http://h.test:8080"
    assert origin("http://h.test/a/b?c") == "http://h.test"
