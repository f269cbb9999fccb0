"""/docs and /redoc work without the internet: every script, style and image they load comes from
the service itself (fastapi-offline's packaged assets), behind the token like the pages."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest

from service import docs
from tests.service.conftest import AUTH

pytestmark = pytest.mark.timeout(600)  # the session's server may compile every bucket first


class References(HTMLParser):
    """Every URL a page's tags load (src, href) and every absolute URL in its text or scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []
        self.absolute: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.loaded += [value for name, value in attrs if name in ("src", "href") and value]

    def handle_data(self, data) -> None:
        self.absolute += re.findall(r"""(?:https?:)?//[^\s"'<>]+""", data)


@pytest.mark.parametrize("page", [docs.SWAGGER_UI_PATH, docs.REDOC_PATH])
def test_the_documentation_pages_load_nothing_from_another_host(served, page):
    with httpx.Client(base_url=served.url, headers=AUTH) as http:
        response = http.get(page)
        assert response.status_code == 200
        references = References()
        references.feed(response.text)
        assert not [url for url in references.loaded if urlsplit(url).netloc], references.loaded
        assert references.absolute == [], references.absolute
        assets = [url for url in references.loaded if url.startswith(docs.ASSETS_PATH + "/")]
        assert len(assets) >= 2, references.loaded  # a script, and a favicon or a style sheet
        for url in assets:
            asset = http.get(url)
            assert asset.status_code == 200, url
            assert asset.headers["content-type"].split(";")[0] == docs.ASSETS[url.rsplit("/")[-1]]
            assert len(asset.content) > 1000, url
            assert httpx.get(served.url + url).status_code == 401, url
        assert docs.OPENAPI_PATH in response.text


def test_only_the_packaged_assets_are_served(served):
    with httpx.Client(base_url=served.url, headers=AUTH) as http:
        assert http.get(f"{docs.ASSETS_PATH}/..%2F__init__.py").status_code == 404
        assert http.get(f"{docs.ASSETS_PATH}/core.py").status_code == 404
