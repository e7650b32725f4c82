"""A real HTTP news site on 127.0.0.1 for the collect tests and benchmark.

ThreadingHTTPServer in a daemon thread. It serves good, malformed and broken
feeds, a feed with ETag/Last-Modified that answers 304, a 500, a page that
never answers in time, a 50 MB page generated on the fly, Big5 and GBK pages,
a cluttered article, an OPML list and the article pages the feeds link to.
All text is written for these tests.
"""

from __future__ import annotations

import html
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# --- fixture text ----------------------------------------------------------------------

CHIP_TITLE = "新竹晶圓廠宣布兩奈米製程進入量產"
CHIP_PARAS = [
    "位於新竹科學園區的晶圓代工廠今天宣布，兩奈米製程正式進入量產階段，首批客戶包括多家手機晶片與伺服器處理器設計公司。",
    "公司表示，新製程採用環繞式閘極電晶體結構，在相同功耗下效能提升約百分之十五，在相同效能下功耗則可降低將近三成。",
    "分析師指出，先進製程的良率是今年最受關注的指標，若良率能在年底前穩定在七成以上，明年的營收成長將相當可觀。",
    "不過，兩奈米晶圓的單片價格也明顯上漲，部分中小型晶片設計公司坦言，短期內仍會留在三奈米或五奈米製程。",
    "另一方面，海外新廠的建置進度也牽動供應鏈布局，設備商預估相關的機台訂單會一路延續到後年上半年。",
    "在封裝端，公司同步擴充先進封裝產能，讓高頻寬記憶體與運算晶片可以更緊密地整合在同一個載板上。",
    "法人估計，人工智慧加速器將是兩奈米初期最主要的需求來源，占首年產能的比重可能超過四成。",
    "公司也提到，新製程的設計套件已經提供給超過二十家客戶，預計明年會有更多產品完成設計定案。",
    "面對競爭對手加速追趕，業界普遍認為，未來兩年的勝負關鍵在於良率爬升的速度與客戶服務的彈性。",
]

DB_TITLE = "Open-source database ships a faster query planner"
DB_PARAS = [
    "The maintainers of a popular open-source database released version nine today, headlined by a rewritten query planner.",
    "According to the release notes, the new planner estimates join sizes from sampled histograms instead of fixed heuristics, "
    "which cuts the run time of the slowest analytical queries in their benchmark suite by more than half.",
    "The release also adds incremental backups that only copy pages changed since the previous backup, "
    "a feature operators have requested for years because full copies of large clusters take hours.",
    "Upgrading requires a dump and restore for clusters older than version seven; newer clusters can upgrade in place.",
]

BIG5_TITLE = "電動機車換電站突破三千座"
BIG5_PARAS = [
    "國內電動機車換電網路今天宣布，全台換電站數量正式突破三千座，平均每隔一點五公里就有一座站點。",
    "業者表示，騎士平均換一次電只需要六秒鐘，尖峰時段的電池供應率也維持在九成五以上。",
    "不過，偏鄉地區的站點密度仍然偏低，地方政府希望透過補助，吸引業者在更多鄉鎮設置換電站。",
]

FULL_PARAS = [
    "一家雲端服務商今天公布第三季財報，資料中心相關營收較去年同期成長四成，主要來自企業導入生成式人工智慧的需求。",
    "執行長在法說會上表示，明年的資本支出將再增加兩成，其中大部分會用在採購加速運算晶片與擴建電力設施。",
    "不過，投資人也關心折舊費用攀升對毛利率的影響，公司預估明年毛利率會小幅下滑，但仍維持在五成以上。",
    "財報公布後，公司股價在盤後交易上漲約百分之六，多家券商也同步調高目標價。",
    "分析師提醒，電力供應與散熱設備的交期，可能成為明年擴建資料中心最大的變數。",
]

GBK_TITLE = "国产大模型发布新版本"
GBK_PARAS = [
    "一家人工智能公司今天发布了新版本的大语言模型，宣称在中文阅读理解和代码生成测试中的成绩都有明显提升。",
    "公司表示，新模型的训练数据经过重新清洗，推理成本比上一代降低了大约百分之四十。",
    "业内人士认为，价格战仍会持续，开发者在选择模型时会更加看重稳定性和服务质量。",
]

CLUTTER_TITLE = "釣魚簡訊假冒物流通知，資安業者提醒民眾小心"
CLUTTER_PARAS = [
    "資安業者最新報告指出，近一個月來假冒物流業者的釣魚簡訊數量大增，內容多半聲稱包裹地址有誤、需要點擊連結補繳運費。",
    "這些連結會導向外觀幾可亂真的假網站，要求使用者輸入信用卡號與簡訊驗證碼，一旦送出，卡片就可能在幾分鐘內被盜刷。",
    "研究人員發現，詐騙集團會依照時事更換話術，例如在購物節前後改用「訂單延遲出貨」或「退款處理中」等說法降低戒心。",
    "業者建議民眾，收到可疑簡訊時不要直接點擊連結，而是自行開啟官方應用程式或網站查詢包裹狀態，並開啟簡訊過濾功能。",
    "警政單位也提醒，如果已經輸入卡號，應立即聯絡發卡銀行停卡，並撥打反詐騙專線通報，避免更多人受害。",
]
RELATED_TITLES = [
    "相關閱讀：五個保護帳號安全的小習慣",
    "相關閱讀：如何辨識假冒的銀行網站",
    "相關閱讀：密碼管理工具怎麼選",
    "相關閱讀：兩步驟驗證設定教學",
    "相關閱讀：公共 Wi-Fi 的三個風險",
    "相關閱讀：手機遺失時該做的事",
    "相關閱讀：社群帳號被盜的自救方法",
    "相關閱讀：網購付款前的檢查清單",
    "相關閱讀：勒索軟體如何入侵企業",
    "相關閱讀：長輩最常遇到的詐騙手法",
    "相關閱讀：如何檢查信件寄件人",
    "相關閱讀：QR Code 詐騙正在增加",
]

# A feed summary shorter than the 200-character threshold: the page is fetched.
CHIP_TEASER = "新竹晶圓代工廠的兩奈米製程今天進入量產。"


def article_html(title: str, paras: list[str], *, date: str = "2026-11-20", author: str = "編輯台",
                 site: str = "測試科技新聞", charset_meta: str = "utf-8", extra: str = "") -> str:
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paras)
    return f"""<!DOCTYPE html>
<html lang="zh-Hant"><head>
<meta charset="{charset_meta}">
<title>{html.escape(title)} | {html.escape(site)}</title>
<meta property="og:title" content="{html.escape(title)}">
<meta property="og:site_name" content="{html.escape(site)}">
<meta name="author" content="{html.escape(author)}">
<meta property="article:published_time" content="{date}T08:00:00+08:00">
</head><body>
<header><nav><a href="/">首頁</a> <a href="/tech">科技</a> <a href="/biz">產業</a></nav></header>
<main><article>
<h1>{html.escape(title)}</h1>
<p class="byline">記者 {html.escape(author)} / {date}</p>
{extra}
{body}
</article></main>
<footer><p>(c) 2026 {html.escape(site)}</p></footer>
</body></html>"""


def cluttered_html() -> str:
    share = "".join(f'<a class="share" href="#">分享到 {n}</a>' for n in ("Facebook", "LINE", "X", "複製連結"))
    nav = "".join(f'<li><a href="/c/{i}">分類{i}：{w}</a></li>' for i, w in enumerate(
        ("最新消息", "手機", "電腦", "遊戲", "資安", "AI", "半導體", "電動車", "新創", "專欄")))
    related = "".join(f'<li><a href="/r/{i}">{html.escape(t)}</a></li>' for i, t in enumerate(RELATED_TITLES))
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in CLUTTER_PARAS)
    return f"""<!DOCTYPE html>
<html lang="zh-Hant"><head><meta charset="utf-8">
<title>{CLUTTER_TITLE} | 測試資安週報</title>
<meta property="og:title" content="{CLUTTER_TITLE}">
<meta property="og:site_name" content="測試資安週報">
<meta property="article:published_time" content="2026-11-21T09:30:00+08:00">
</head><body>
<div id="top-bar"><ul class="menu">{nav}</ul><form><input name="q" placeholder="搜尋"></form></div>
<div class="share-bar">{share}</div>
<div class="content"><article class="post">
<h1>{CLUTTER_TITLE}</h1>
<div class="meta">撰文：資安小組　2026-11-21</div>
{body}
</article>
<div class="share-bar bottom">{share}<span>按讚加入粉絲團</span></div>
<aside class="related-posts"><h3>相關文章</h3><ul>{related}</ul></aside>
<div class="comments"><h3>留言</h3><p>訪客：這種簡訊我上週也收到過！</p></div>
</div>
<footer><ul>{nav}</ul><p>© 2026 測試資安週報 版權所有</p></footer>
</body></html>"""


def rss(title: str, link: str, items: list[dict[str, str]]) -> str:
    parts = []
    for it in items:
        content = f"<content:encoded><![CDATA[{it['content']}]]></content:encoded>" if it.get("content") else ""
        parts.append(f"""<item><title>{html.escape(it['title'])}</title><link>{html.escape(it['link'])}</link>
<guid>{html.escape(it['link'])}</guid><pubDate>{it.get('date', 'Fri, 20 Nov 2026 08:00:00 GMT')}</pubDate>
<description>{html.escape(it.get('summary', ''))}</description>{content}</item>""")
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>
<title>{html.escape(title)}</title><link>{html.escape(link)}</link><description>test feed</description>
{''.join(parts)}
</channel></rss>"""


class NewsSite:
    """Content keyed by path; ``base`` is set once the server listens."""

    def __init__(self) -> None:
        self.base = ""
        self.hits: Counter[str] = Counter()
        self.huge_sent = 0
        self.huge_size = 50 * 1024 * 1024
        self.slow_seconds = 5.0
        self.stop = threading.Event()
        self.pages: dict[str, tuple[str, bytes]] = {}  # path -> (content-type, body)
        self.etag = '"v1"'
        self.user_agents: set[str] = set()
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.last_modified = "Fri, 20 Nov 2026 08:00:00 GMT"

    def build(self) -> None:
        b = self.base
        p = self.pages
        p["/article/chip"] = ("text/html; charset=utf-8", article_html(CHIP_TITLE, CHIP_PARAS).encode())
        p["/article/db"] = ("text/html; charset=utf-8", article_html(
            DB_TITLE, DB_PARAS, site="Test Dev Weekly", author="Dana Lee").encode())
        copy = article_html(CHIP_TITLE + "（轉載）", CHIP_PARAS, site="轉載新聞網", author="轉載中心",
                            extra="<p>本文經授權轉載。</p>")
        p["/syndicated/chip-copy"] = ("text/html; charset=utf-8", copy.encode())
        p["/big5"] = ("text/html; charset=big5",
                      article_html(BIG5_TITLE, BIG5_PARAS, charset_meta="big5").encode("big5"))
        # GBK: the header names no charset; only <meta> does.
        p["/gbk"] = ("text/html", article_html(GBK_TITLE, GBK_PARAS, charset_meta="gbk").encode("gbk"))
        p["/cluttered"] = ("text/html; charset=utf-8", cluttered_html().encode())
        p["/feed/rss.xml"] = ("application/rss+xml", rss("測試科技新聞", b + "/", [
            {"title": CHIP_TITLE, "link": b + "/article/chip?utm_source=rss&utm_medium=feed", "summary": CHIP_TEASER},
            {"title": DB_TITLE, "link": b + "/article/db?utm_source=rss", "summary": "A short teaser."},
            {"title": "一則連結失效的新聞", "link": b + "/article/gone",
             "summary": "這則新聞的原文頁面已經下架，只剩下摘要可以使用。"},
            {"title": "全文就在 feed 裡的新聞", "link": b + "/article/full",
             "summary": "短摘要。", "content": "".join(f"<p>{x}</p>" for x in FULL_PARAS)},
        ]).encode())
        p["/feed/atom.xml"] = ("application/atom+xml", f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Test Dev Weekly</title>
<link href="{b}/"/><id>{b}/feed/atom.xml</id><updated>2026-11-21T00:00:00Z</updated>
<entry><title>{DB_TITLE}</title><link href="{b}/article/db?fbclid=abc123#comments"/>
<id>urn:test:db</id><updated>2026-11-20T10:00:00Z</updated><summary>Teaser only.</summary></entry>
<entry><title>{CHIP_TITLE}（轉載）</title><link href="{b}/syndicated/chip-copy"/>
<id>urn:test:copy</id><updated>2026-11-20T12:00:00Z</updated><summary>轉載的晶片新聞。</summary></entry>
</feed>""".encode())
        # Unescaped '&' and an unclosed element: feedparser flags bozo but still finds entries.
        p["/feed/bozo.xml"] = ("application/rss+xml", f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Sloppy & Co News</title><link>{b}/</link>
<item><title>Broken markup & still readable</title><link>{b}/article/sloppy</link>
<description>{"這則 feed 的標記有錯，但內容仍然可以讀取。" * 12}</description></item>
<item><title>Second entry</title><link>{b}/article/sloppy2</link><description>{"第二則。" * 60}</description>
</channel>""".encode())
        p["/feed/broken.xml"] = ("application/rss+xml", b"\x00\x01 this is not xml at all }{ <<<")
        p["/feed/etag.xml"] = ("application/rss+xml", rss("Conditional News", b + "/", [
            {"title": "Cached entry", "link": b + "/article/cached", "summary": "Cached. " * 40},
        ]).encode())
        p["/subs.opml"] = ("text/x-opml", f"""<?xml version="1.0" encoding="utf-8"?>
<opml version="2.0"><head><title>我的訂閱</title></head><body>
<outline text="科技"><outline text="測試科技新聞" type="rss" xmlUrl="{b}/feed/rss.xml"/>
  <outline text="開發"><outline text="Test Dev Weekly" type="rss" xmlUrl="{b}/feed/atom.xml"/></outline>
</outline>
<outline text="No feed here" htmlUrl="{b}/"/>
</body></opml>""".encode())

    def handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; Nagle + delayed ACK would add 40 ms.
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = urlsplit(self.path).path
                site.hits[path] += 1
                site.user_agents.add(self.headers.get("User-Agent", ""))
                if path.startswith("/delay/"):
                    return self._delayed()
                if path == "/redirect":
                    return self._send(302, "text/plain", b"", {"Location": "/article/db"})
                if path == "/loop":
                    return self._send(302, "text/plain", b"", {"Location": "/loop"})
                if path == "/error500":
                    return self._send(500, "text/plain", b"boom")
                if path == "/slow":
                    site.stop.wait(site.slow_seconds)
                    return self._send(200, "text/html", b"<html><body><p>late</p></body></html>")
                if path == "/huge":
                    return self._huge()
                if path == "/declared-huge":
                    # Announces 50 MB; a client honouring the cap never reads the body.
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(site.huge_size))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    self.wfile.write(b"<html>")
                    return None
                if path == "/feed/etag.xml":
                    inm = self.headers.get("If-None-Match")
                    ims = self.headers.get("If-Modified-Since")
                    if inm == site.etag or (inm is None and ims == site.last_modified):
                        self.send_response(304)
                        self.send_header("ETag", site.etag)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return None
                    ctype, body = site.pages[path]
                    return self._send(200, ctype, body, {"ETag": site.etag, "Last-Modified": site.last_modified})
                if path in site.pages:
                    ctype, body = site.pages[path]
                    return self._send(200, ctype, body)
                return self._send(404, "text/plain", b"not found")

            def _send(self, code: int, ctype: str, body: bytes, extra: dict[str, str] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _delayed(self) -> None:
                # Counts requests in flight at once, to check the per-host limit.
                with site.lock:
                    site.in_flight += 1
                    site.max_in_flight = max(site.max_in_flight, site.in_flight)
                site.stop.wait(0.15)
                with site.lock:
                    site.in_flight -= 1
                self._send(200, "text/html; charset=utf-8", site.pages["/article/db"][1])

            def _huge(self) -> None:
                # No Content-Length: the client can only stop by counting what arrives.
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                chunk = b"<p>" + b"filler text " * 5400 + b"</p>\n"
                try:
                    self.wfile.write(b"<html><body>")
                    while site.huge_sent < site.huge_size and not site.stop.is_set():
                        self.wfile.write(chunk)
                        site.huge_sent += len(chunk)
                except OSError:
                    pass  # the client hung up: exactly what the cap should do

        return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the benchmark opens many connections at once

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up (timeouts, the size cap) are part of the tests


class NewsServer:
    """Context manager: ``with NewsServer() as srv: srv.url('/feed/rss.xml')``."""

    def __init__(self, site: NewsSite | None = None) -> None:
        self.site = site or NewsSite()
        self.httpd = _Server(("127.0.0.1", 0), self.site.handler())
        self.site.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.site.build()
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return self.site.base + path

    def __enter__(self) -> NewsServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.site.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
