"""The browser harness (browser.py) against real pages in Debian's headless Chromium.

The page is an inline SVG of three <rect>s of known widths, fills and <title>s:
the tests read them back through evaluate, check console_errors on a clean and
on a throwing page, and find a rect's fill in a screenshot decoded by png_pixels.
"""
import struct
import time
import zlib

import pytest

from . import browser

CORE_INDEPENDENT = True

if browser.chromium_path() is None:
    pytest.skip('chromium is not installed', allow_module_level=True)

# Width, fill and title of each rect, laid out left to right 20 px apart at y 20..120.
RECTS = (
    (40, '#d62728', 'forty red'),
    (80, '#2ca02c', 'eighty green'),
    (120, '#1f77b4', 'one hundred twenty blue'),
)
VIEWPORT = (480, 240)
# Every browser wait in a test is bounded by this; a test's whole budget is a few of them at most.
TIMEOUT = 20


def svg_page():
    shapes, x = [], 20
    for width, fill, title in RECTS:
        shapes.append('<rect x="%d" y="20" width="%d" height="100" fill="%s"><title>%s</title></rect>'
                      % (x, width, fill, title))
        x += width + 20
    return ('<!doctype html>\n<html><head><meta charset="utf-8"><title>rects</title>\n'
            '<style>html, body { margin: 0; background: #ffffff; }</style></head>\n'
            '<body><svg id="chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="140">%s</svg></body></html>\n'
            % (x, ''.join(shapes)))


def rgb(colour):
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


@pytest.fixture(scope='module')
def page(tmp_path_factory):
    """One Chromium showing the SVG page, shared by this module's tests (a start costs about a second)."""
    path = tmp_path_factory.mktemp('browser') / 'rects.html'
    path.write_text(svg_page())
    with browser.open_page(str(path), width=VIEWPORT[0], height=VIEWPORT[1], timeout=TIMEOUT) as opened:
        yield opened


def test_rect_count(page):
    assert page.evaluate('document.querySelectorAll("#chart rect").length') == len(RECTS)


def test_rendered_widths(page):
    widths = page.evaluate('Array.from(document.querySelectorAll("#chart rect"), r => r.getBBox().width)')
    assert widths == [width for width, _fill, _title in RECTS]


def test_titles(page):
    titles = page.evaluate('Array.from(document.querySelectorAll("#chart rect > title"), t => t.textContent)')
    assert titles == [title for _width, _fill, title in RECTS]


def test_evaluate_values_and_promises(page):
    assert page.evaluate('({a: [1, "two", null, true]})') == {'a': [1, 'two', None, True]}
    assert page.evaluate('new Promise(resolve => setTimeout(() => resolve(42), 10))') == 42
    assert page.evaluate('undefined') is None
    assert page.evaluate('1 / 0') == float('inf')


def test_evaluate_raises_what_the_page_threw(page):
    with pytest.raises(browser.BrowserError, match='no such thing'):
        page.evaluate('throw new Error("no such thing")')
    with pytest.raises(browser.BrowserError, match='rejected here'):
        page.evaluate('Promise.reject(new Error("rejected here"))')


def test_clean_page_has_no_console_errors(page):
    assert page.console_errors() == []


def test_screenshot_has_the_fill_colour(page, tmp_path):
    shot = page.screenshot(str(tmp_path / 'rects.png'))
    document = page.evaluate('[document.documentElement.scrollWidth, document.documentElement.scrollHeight]')
    assert browser.png_size(shot) == tuple(document)
    width, height, rows = browser.png_pixels(shot)
    assert (width, height) == tuple(document)
    boxes = page.evaluate('Array.from(document.querySelectorAll("#chart rect"), r => {'
                          ' const b = r.getBoundingClientRect(); return [b.x, b.y, b.width, b.height]; })')
    for (x, y, w, h), (_width, fill, _title) in zip(boxes, RECTS):
        centre = rows[int(y + h / 2)][int(x + w / 2)]
        assert centre[:3] == rgb(fill), (fill, centre)
    # And outside every rect, the white background.
    assert rows[5][5][:3] == (255, 255, 255)


def test_throwing_page_reports_console_errors(tmp_path):
    path = tmp_path / 'throws.html'
    path.write_text('<!doctype html><html><body><p>before</p>\n'
                    '<script>console.error("logged on purpose");\n'
                    'document.body.dataset.ran = "yes"; undefinedFunctionOnPurpose();</script></body></html>\n')
    with browser.open_page(str(path), width=320, height=200, timeout=TIMEOUT) as page:
        assert page.evaluate('document.body.dataset.ran') == 'yes'
        errors = page.console_errors()
        assert any('logged on purpose' in error for error in errors), errors
        assert any('undefinedFunctionOnPurpose' in error for error in errors), errors
        # A wait that never ends is cut off at the page's timeout with what it waited for.
        page.timeout = 1
        started = time.monotonic()
        with pytest.raises(browser.BrowserError, match='timed out .* Runtime.evaluate'):
            page.evaluate('new Promise(() => {})')
        assert time.monotonic() - started < 5


def test_missing_page_fails_clearly(tmp_path):
    with pytest.raises(browser.BrowserError, match='ERR_FILE_NOT_FOUND'):
        with browser.open_page(str(tmp_path / 'absent.html'), timeout=TIMEOUT):
            pass


def test_early_exit_shows_stderr(tmp_path, monkeypatch):
    fake = tmp_path / 'chromium'
    fake.write_text('#!/bin/sh\necho "fake chromium cannot start: $*" >&2\nexit 3\n')
    fake.chmod(0o755)
    monkeypatch.setattr(browser, 'chromium_path', lambda: str(fake))
    page = tmp_path / 'page.html'
    page.write_text('<p>never shown</p>')
    started = time.monotonic()
    with pytest.raises(browser.BrowserError, match=r'(?s)exited \(status 3\) while waiting for .*Target.getTargets.*'
                                                   r'fake chromium cannot start: .*--remote-debugging-pipe'):
        with browser.open_page(str(page), timeout=TIMEOUT):
            pass
    assert time.monotonic() - started < 5


def encode_png(width, height, channels, rows, filters):
    """A PNG of rows (lists of bytes per row) with each row filtered by the given type, the encoder's side."""
    def paeth(a, b, c):
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        return a if pa <= pb and pa <= pc else b if pb <= pc else c
    raw, previous = bytearray(), bytes(width * channels)
    for row, kind in zip(rows, filters):
        out = bytearray([kind])
        for i, value in enumerate(row):
            a = row[i - channels] if i >= channels else 0
            b = previous[i]
            c = previous[i - channels] if i >= channels else 0
            predictor = (0, a, b, (a + b) >> 1, paeth(a, b, c))[kind]
            out.append((value - predictor) & 0xff)
        raw += out
        previous = row

    def chunk(kind, body):
        return struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body))
    colour = {3: 2, 4: 6}[channels]
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, colour, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(bytes(raw))) + chunk(b'IEND', b''))


@pytest.mark.parametrize('channels', [3, 4])
def test_png_pixels_decodes_every_filter_type(tmp_path, channels):
    width, height = 7, 10
    rows = [bytes((x * 37 + y * 91 + c * 53 + x * y * 13) & 0xff for x in range(width) for c in range(channels))
            for y in range(height)]
    path = tmp_path / 'filters.png'
    path.write_bytes(encode_png(width, height, channels, rows, [y % 5 for y in range(height)]))
    assert browser.png_size(str(path)) == (width, height)
    decoded_width, decoded_height, pixels = browser.png_pixels(str(path))
    assert (decoded_width, decoded_height) == (width, height)
    assert [bytes(value for pixel in row for value in pixel) for row in pixels] == rows
