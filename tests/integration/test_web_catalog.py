"""The web page's catalog and audit-log views in headless Chromium, against the real app on
uvicorn and real PostgreSQL. For the audit view the outbox relay and the log writer run in the
same process over the in-memory event bus and log store, as ``hexmarket dev`` can."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from adapters.postgres.migrate import migrate
from entrypoints.settings import Settings
from entrypoints.workers.logwriter import run_log_writer
from entrypoints.workers.relay import run_relay
from tests.integration.web_support import chromium, horizontal_overflow, screenshot, serve
from tests.support import memory_settings

TOKEN = "s3cret-token"
EVENTS_WITHIN_MS = 30_000


def settings_for(pg_url: str, **overrides: Any) -> Settings:
    fields: dict[str, Any] = {
        "postgres_url": pg_url,
        "catalog_store": "postgres",
        "pg_pool_size": 4,
        "relay_idle_ms": 200,
        "log_batch_ms": 50,
    }
    return memory_settings(**(fields | overrides))


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as browser:
        yield browser


@pytest.fixture
async def audited_app(pg_url: str) -> AsyncIterator[str]:
    """The app with the relay and the log writer: changes reach ``GET /logs``."""
    await migrate(pg_url)
    async with serve(settings_for(pg_url), workers=(run_relay, run_log_writer)) as url:
        yield url


@pytest.fixture
async def open_app(pg_url: str) -> AsyncIterator[str]:
    """The app alone, changes open to all."""
    await migrate(pg_url)
    async with serve(settings_for(pg_url)) as url:
        yield url


@pytest.fixture
async def guarded_app(pg_url: str) -> AsyncIterator[str]:
    """The app with ``HEXMARKET_API_TOKEN`` set: changes need the bearer token."""
    await migrate(pg_url)
    async with serve(settings_for(pg_url, api_token=TOKEN)) as url:
        yield url


async def open_page(browser: Browser, url: str, width: int) -> tuple[Page, list[Any]]:
    page = await browser.new_page(viewport={"width": width, "height": 900})
    errors: list[Any] = []
    page.on("pageerror", lambda exc: errors.append(exc))
    # Script errors only: Chromium also logs each 4xx answer, which these tests provoke.
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    await page.goto(url)
    await expect(page.locator("body[data-ready=true]")).to_have_count(1)
    return page, errors


async def test_a_good_is_created_edited_moved_removed_and_its_history_shown(
    audited_app: str, browser: Browser
) -> None:
    page, errors = await open_page(browser, audited_app + "/#catalog", 1280)
    rows = page.locator("#goods tbody tr:not(.editor)")
    message = page.locator("#catalog-message")
    await expect(page.locator("#goods-empty")).to_be_visible()

    # An empty name is refused by the server; its reason shows under the field.
    await page.click("#good-submit")
    await expect(page.locator("#good-name-error")).to_have_text("must not be empty")
    await expect(page.locator("#good-name")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#good-form .form-error")).to_contain_text("Please correct")
    await expect(rows).to_have_count(0)

    for name, description in (("Black tea", ""), ("Green tea", "loose leaf")):
        await page.fill("#good-name", name)
        await page.fill("#good-description", description)
        await page.click("#good-submit")
        await expect(message).to_contain_text(f"Added “{name}”")
    await expect(page.locator("#good-name-error")).to_be_hidden()
    await expect(page.locator("#good-name")).not_to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#good-form .form-error")).to_be_hidden()
    await expect(rows.locator("td.name")).to_have_text(["Black tea", "Green tea"])
    await expect(page.locator("#goods-meta")).to_have_text("2 goods (0 removed) · showing 1–2")
    green_id = await rows.nth(1).get_attribute("data-id")
    row = page.locator(f'#goods tr[data-id="{green_id}"]')

    # Edit in the row: an empty name is refused in place, then a real edit is saved.
    await row.get_by_role("button", name="Edit").click()
    editor = page.locator("#goods tr.editor")
    name_input = editor.get_by_label("Name")
    await expect(name_input).to_be_focused()
    await expect(name_input).to_have_value("Green tea")
    await name_input.fill("   ")
    await editor.get_by_role("button", name="Save").click()
    await expect(editor.locator(f"#edit-name-{green_id}-error")).to_have_text("must not be empty")
    await expect(name_input).to_have_attribute("aria-invalid", "true")
    await name_input.fill("Sencha")
    await editor.get_by_label("Description").fill("steamed <b>green</b>")
    await editor.get_by_role("button", name="Save").click()
    await expect(editor).to_have_count(0)
    await expect(row.locator("td.name")).to_have_text("Sencha")
    await expect(row).to_contain_text("steamed <b>green</b>")  # text, not markup
    await expect(row.get_by_role("button", name="Edit")).to_be_focused()

    # Reprioritize: a bad number is explained next to the input; a good one reorders the list.
    priority = row.get_by_label("New priority")
    await priority.fill("0")
    await row.locator("[data-action=move]").click()
    row_error = row.locator(".field-error")
    await expect(row_error).to_contain_text("New priority: must be a whole number, 1 or more")
    assert "`" not in await row_error.inner_text()  # no decoder wording reaches the person
    await priority.fill("2.5")
    await row.locator("[data-action=move]").click()
    await expect(row_error).to_contain_text("New priority: must be a whole number")
    await expect(priority).to_have_attribute("aria-invalid", "true")
    await screenshot(page, "web-catalog-error-desktop.png")
    await expect(rows.locator("td.name")).to_have_text(["Black tea", "Sencha"])
    await priority.fill("1")
    await row.locator("[data-action=move]").click()
    await expect(message).to_contain_text("Moved “Sencha” to priority 1; 1 other good moved")
    await expect(rows.locator("td.name")).to_have_text(["Sencha", "Black tea"])
    await expect(rows.locator("td:first-child")).to_have_text(["1", "2"])
    await expect(row.locator(".field-error")).to_be_hidden()

    # Remove asks first, inline; "Keep" backs out, "Yes, remove" removes (softly).
    await row.locator("[data-action=remove]").click()
    confirm = row.locator(".confirm")
    await expect(confirm).to_contain_text("Remove “Sencha”?")
    await confirm.get_by_role("button", name="Keep").click()
    await expect(confirm).to_have_count(0)
    await expect(row.locator("td.name")).to_have_text("Sencha")
    await row.locator("[data-action=remove]").click()
    await confirm.get_by_role("button", name="Yes, remove").click()
    await expect(message).to_contain_text("Removed “Sencha”")
    await expect(row.locator(".badge")).to_have_text("removed")
    await expect(row.get_by_role("button", name="Edit")).to_have_count(0)
    await expect(page.locator("#goods-meta")).to_have_text("2 goods (1 removed) · showing 1–2")
    await screenshot(page, "web-catalog-desktop.png")

    # The good's audit history: create, update, reprioritize, remove, newest first, as the
    # relay and the log writer deliver them.
    await row.get_by_role("button", name="History").click()
    await expect(page.locator("#tab-logs")).to_be_visible()
    await expect(page.locator("#logs-good")).to_have_value(str(green_id))
    logs = page.locator("#logs tbody tr")
    await expect(logs.locator("td:nth-child(2)")).to_have_text(
        ["remove", "reprioritize", "update", "create"], timeout=EVENTS_WITHIN_MS
    )
    await expect(logs.locator("td:nth-child(5)")).to_have_text(
        ["Sencha", "Sencha", "Sencha", "Green tea"]
    )
    await expect(logs.locator("td:nth-child(7)")).to_have_text(["1", "1", "2", "2"])
    await expect(logs.locator("td:nth-child(8)")).to_have_text(["yes", "no", "no", "no"])
    # each row says what changed, before -> after
    await expect(logs.locator("td:nth-child(6)")).to_have_text(
        [
            "active → removed",
            "priority 2 → 1",
            "name “Green tea” → “Sencha”; description “loose leaf” → “steamed <b>green</b>”",
            "created at priority 2",
        ]
    )
    await expect(page.locator("#logs-meta")).to_have_text(
        f"4 events in 4 changes, newest first · project #1, good #{green_id}"
    )
    await screenshot(page, "web-logs-desktop.png")

    # Every event: Black tea's create and the move Sencha's reprioritize gave it, shown as one
    # change whose target is Sencha and which shifted one good (folded out on request).
    await page.fill("#logs-good", "")
    await page.click("#logs-submit")
    changes = page.locator("#logs tbody tr.change")
    await expect(changes).to_have_count(5)
    await expect(changes.locator("td:nth-child(2)")).to_have_text(
        ["remove", "reprioritize", "update", "create", "create"]
    )
    move = changes.nth(1)
    await expect(move.locator("td:nth-child(5)")).to_have_text("Sencha")
    toggle = move.get_by_role("button", name="shifted 1 good")
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    shifted = page.locator("#logs tbody tr.shifted")
    await expect(shifted).to_be_hidden()
    await toggle.click()
    await expect(shifted).to_be_visible()
    await expect(shifted).to_have_text(
        f"Black tea (#{await rows.nth(1).get_attribute('data-id')}): priority 1 → 2"
    )
    await expect(page.locator("#logs-meta")).to_contain_text("6 events in 5 changes")

    # Filters: by type, and by a time range that ends before everything.
    await page.select_option("#logs-type", "create")
    await page.click("#logs-submit")
    await expect(changes.locator("td:nth-child(2)")).to_have_text(["create", "create"])
    await page.select_option("#logs-type", "")
    await page.fill("#logs-until", "2001-01-01T00:00:00")
    await page.click("#logs-submit")
    await expect(changes).to_have_count(0)
    await expect(page.locator("#logs-message")).to_contain_text("No events")
    await page.fill("#logs-until", "")
    await page.click("#logs-submit")
    await expect(changes).to_have_count(5)

    # Phone width: the audit log and the catalog, with the editor open, fit without scrolling
    # sideways.
    await page.set_viewport_size({"width": 390, "height": 844})
    assert await horizontal_overflow(page) == 0
    await screenshot(page, "web-logs-phone.png")
    await page.click("nav [data-tab=catalog]")
    black = page.locator("#goods tbody tr", has_text="Black tea")
    await black.get_by_role("button", name="Edit").click()
    await expect(page.locator("#goods tr.editor")).to_be_visible()
    assert await horizontal_overflow(page) == 0
    await screenshot(page, "web-catalog-phone.png")
    assert errors == []


async def test_paging_projects_and_the_api_token(guarded_app: str, browser: Browser) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=guarded_app, headers=auth) as client:
        for i in range(1, 24):
            name = "<img src=x onerror=alert(1)>" if i == 12 else f"Good {i:02}"
            response = await client.post("/good/create?projectId=1", json={"name": name})
            assert response.status_code == 200, response.text

    page, errors = await open_page(browser, guarded_app + "/#catalog", 390)
    rows = page.locator("#goods tbody tr")
    meta, pager = page.locator("#goods-meta"), page.locator("#goods-page")
    await expect(meta).to_have_text("23 goods (0 removed) · showing 1–20")
    await expect(pager).to_have_text("Page 1 of 2")
    await expect(page.locator("#goods-prev")).to_be_disabled()
    await expect(rows).to_have_count(20)

    await page.select_option("#goods-limit", "10")
    await expect(meta).to_have_text("23 goods (0 removed) · showing 1–10")
    await expect(pager).to_have_text("Page 1 of 3")
    await page.click("#goods-next")
    await expect(meta).to_have_text("23 goods (0 removed) · showing 11–20")
    await expect(rows.locator("td.name").nth(1)).to_have_text("<img src=x onerror=alert(1)>")
    assert await page.locator("#goods img").count() == 0  # shown as text, never as markup
    await page.click("#goods-next")
    await expect(pager).to_have_text("Page 3 of 3")
    await expect(rows).to_have_count(3)
    await expect(page.locator("#goods-next")).to_be_disabled()
    await page.click("#goods-prev")
    await expect(pager).to_have_text("Page 2 of 3")

    # Without the token a change is refused with a clear message, and the token box opens.
    form_error = page.locator("#good-form .form-error")
    await page.fill("#good-name", "Needs a token")
    await page.click("#good-submit")
    await expect(form_error).to_contain_text("Changes need the API token")
    await expect(page.locator("#token-box")).to_have_attribute("open", "")
    await page.fill("#api-token", "wrong")
    await page.click("#token-form button[type=submit]")
    await page.click("#good-submit")
    await expect(form_error).to_contain_text("The server refused the API token")
    await screenshot(page, "web-catalog-401-phone.png", full_page=False)
    await expect(page.locator("#token-box")).to_have_attribute("open", "")
    await page.fill("#api-token", TOKEN)
    await page.click("#token-form button[type=submit]")
    await expect(page.locator("#token-state")).to_have_text("(set)")
    await page.click("#good-submit")
    await expect(page.locator("#catalog-message")).to_contain_text("Added “Needs a token”")
    await expect(form_error).to_be_hidden()
    # The page shows where the new good went: the last page, the row marked.
    await expect(pager).to_have_text("Page 3 of 3")
    await expect(page.locator("#goods tr.changed td.name")).to_have_text("Needs a token")
    stored = await page.evaluate(
        "[sessionStorage.getItem('hexmarket.token'), localStorage.getItem('hexmarket.token')]"
    )
    assert stored == [TOKEN, None]

    # A new project: an empty name is explained; a created one is selected for new goods.
    await page.click("#project-box summary")
    await page.click("#project-form button[type=submit]")
    await expect(page.locator("#project-name-error")).to_have_text("must not be empty")
    await page.fill("#project-name", "Second shop")
    await page.click("#project-form button[type=submit]")
    await expect(page.locator("#catalog-message")).to_contain_text("Created project “Second shop”")
    await expect(page.locator("#good-project")).to_have_value("2")
    await page.fill("#good-name", "In the second shop")
    await page.click("#good-submit")
    changed = page.locator("#goods tr.changed")
    await expect(changed.locator("td.name")).to_have_text("In the second shop")
    await expect(changed.locator("td:nth-child(3)")).to_have_text("Second shop (#2)")

    # The tabs follow the ARIA tab pattern: arrow keys move between them.
    await page.focus("#tab-button-catalog")
    await page.keyboard.press("ArrowRight")
    await expect(page.locator("#tab-logs")).to_be_visible()
    await expect(page.locator("#tab-button-logs")).to_be_focused()
    await expect(page.locator("#tab-catalog")).to_be_hidden()
    await page.keyboard.press("ArrowLeft")
    await expect(page.locator("#tab-catalog")).to_be_visible()
    await expect(page.locator("#tab-button-catalog")).to_have_attribute("aria-selected", "true")

    # The token outlives a reload of the tab.
    await page.reload()
    await expect(page.locator("body[data-ready=true]")).to_have_count(1)
    await expect(page.locator("#token-state")).to_have_text("(set)")
    assert await horizontal_overflow(page) == 0
    await screenshot(page, "web-catalog-paging-phone.png", full_page=False)

    # Someone else removes a good the page still shows: removing it here says so and
    # refreshes the list, rather than failing silently.
    first = page.locator("#goods tbody tr").first
    await expect(first.locator("td.name")).to_have_text("Good 01")
    good_id = await first.get_attribute("data-id")
    async with httpx.AsyncClient(base_url=guarded_app, headers=auth) as client:
        response = await client.delete(f"/good/remove?id={good_id}&projectId=1")
        assert response.status_code == 200, response.text
    await first.locator("[data-action=remove]").click()
    await first.get_by_role("button", name="Yes, remove").click()
    await expect(page.locator("#catalog-message")).to_contain_text(
        "Not found: it may have been removed in the meantime. The list is refreshed."
    )
    await expect(first.locator(".badge")).to_have_text("removed")
    await expect(meta).to_contain_text("25 goods (1 removed)")
    assert errors == []


# Cells whose text runs over more than one line (a header or a number broken mid-word).
BROKEN_CELLS = """(sel) => [...document.querySelectorAll(sel)].filter((cell) => {
  const range = document.createRange();
  range.selectNodeContents(cell);
  return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size > 1;
}).map((cell) => cell.textContent)"""


async def test_the_goods_table_at_desktop_width_and_a_moved_good_in_view(
    open_app: str, browser: Browser
) -> None:
    long = "a description long enough to wrap over several lines of the table " * 3
    async with httpx.AsyncClient(base_url=open_app) as client:
        for i in range(1, 26):
            body = {"name": f"Good {i:02} with a longer name", "description": long}
            response = await client.post("/good/create?projectId=1", json=body)
            assert response.status_code == 200, response.text
    page, errors = await open_page(browser, open_app + "/#catalog", 1280)
    await page.select_option("#goods-limit", "10")
    rows = page.locator("#goods tbody tr:not(.editor)")
    await expect(rows).to_have_count(10)
    await page.click("#goods-next")
    await expect(page.locator("#goods-page")).to_have_text("Page 2 of 3")
    broken = await page.evaluate(BROKEN_CELLS, "#goods th, #goods td.num, #goods .badge")
    assert broken == [], f"broken mid-word at 1280 px: {broken}"
    await screenshot(page, "web-catalog-table-1280.png")

    # After "Move" the page follows the good to where it went, marked.
    row = page.locator("#goods tbody tr", has_text="Good 12 ")
    await row.get_by_label("New priority").fill("25")
    await row.locator("[data-action=move]").click()
    message = page.locator("#catalog-message")
    await expect(message).to_contain_text("Moved “Good 12 with a longer name” to priority 25")
    await expect(page.locator("#goods-page")).to_have_text("Page 3 of 3")
    moved = page.locator("#goods tr.changed")
    await expect(moved.locator("td.name")).to_have_text("Good 12 with a longer name")
    await expect(moved.locator("td:first-child")).to_have_text("25")
    await expect(moved).to_be_in_viewport()
    await expect(moved.locator("[data-action=move]")).to_be_focused()
    # and back to the top: from the last page to the first
    await moved.get_by_label("New priority").fill("1")
    await moved.locator("[data-action=move]").click()
    await expect(page.locator("#goods-page")).to_have_text("Page 1 of 3")
    await expect(page.locator("#goods tr.changed td:first-child")).to_have_text("1")

    # The success message goes when the person pages or opens another box.
    await expect(message).to_be_visible()
    await page.click("#goods-next")
    await expect(message).to_be_hidden()
    await page.click("#goods-prev")
    first = page.locator("#goods tbody tr").first
    await first.get_by_label("New priority").fill("2")
    await first.locator("[data-action=move]").click()
    await expect(message).to_contain_text("Moved")
    await page.locator("#goods tbody tr").nth(3).get_by_role("button", name="Edit").click()
    await expect(message).to_be_hidden()
    await page.click("#goods tr.editor >> text=Cancel")
    await page.locator("#goods tbody tr").first.get_by_label("New priority").fill("3")
    await page.locator("#goods tbody tr").first.locator("[data-action=move]").click()
    await expect(message).to_contain_text("Moved")
    await page.click("#project-box summary")
    await expect(message).to_be_hidden()
    assert errors == []


@pytest.fixture
async def app_without_clickhouse(pg_url: str) -> AsyncIterator[str]:
    """The app with the ClickHouse log store chosen but no HEXMARKET_CLICKHOUSE_URL: the log
    store answers every query with an outage, as a ClickHouse that is down does."""
    await migrate(pg_url)
    async with serve(settings_for(pg_url, log_store="clickhouse")) as url:
        yield url


async def test_an_audit_log_outage_is_explained(
    app_without_clickhouse: str, browser: Browser
) -> None:
    page, errors = await open_page(browser, app_without_clickhouse + "/#logs", 1280)
    message = page.locator("#logs-message")
    await expect(message).to_have_text(
        "The audit log store is unavailable right now. Try again shortly."
    )
    assert "errors." not in await message.inner_text()
    assert errors == []


async def test_the_audit_log_on_a_phone_pages_by_whole_changes(
    audited_app: str, browser: Browser
) -> None:
    async with httpx.AsyncClient(base_url=audited_app) as client:
        ids = []
        for i in range(1, 31):
            response = await client.post("/good/create?projectId=1", json={"name": f"Tea {i:02}"})
            assert response.status_code == 200, response.text
            ids.append(response.json()["id"])
        # one move that shifts the 29 goods before it: 30 events, one change
        response = await client.patch(
            f"/good/reprioritize?id={ids[-1]}&projectId=1", json={"newPriority": 1}
        )
        assert response.status_code == 200, response.text

    page, errors = await open_page(browser, audited_app + "/#logs", 390)
    meta = page.locator("#logs-meta")
    changes = page.locator("#logs tbody tr.change")
    # 20 events a page on a phone; the 30-event move is one entry whatever the page size
    await expect(meta).to_have_text("20 events in 1 change, newest first", timeout=EVENTS_WITHIN_MS)
    await page.select_option("#logs-limit", "100")
    await page.click("#logs-submit")
    await expect(meta).to_have_text("60 events in 31 changes, newest first")
    await expect(changes.first.get_by_role("button", name="shifted 29 goods")).to_be_visible()
    await page.select_option("#logs-limit", "20")
    await page.select_option("#logs-type", "create")
    await page.click("#logs-submit")
    await expect(meta).to_have_text("20 events in 20 changes, newest first · create events")
    height = await page.evaluate("document.documentElement.scrollHeight")
    assert height < 4000, height  # was ~240 px an event
    assert await horizontal_overflow(page) == 0
    await screenshot(page, "web-logs-paged-phone.png")
    await page.click("#logs-older")
    await expect(page.locator("#logs-page")).to_have_text("Page 2")
    await expect(meta).to_have_text("10 events in 10 changes, newest first · create events")
    await expect(page.locator("#logs-older")).to_be_disabled()
    names = await changes.locator("td:nth-child(5)").all_inner_texts()
    assert names == [f"Tea {i:02}" for i in range(10, 0, -1)]
    await page.click("#logs-newest")
    await expect(page.locator("#logs-page")).to_have_text("Page 1")
    assert errors == []


async def test_every_view_at_desktop_and_phone_width(audited_app: str, browser: Browser) -> None:
    async with httpx.AsyncClient(base_url=audited_app) as client:
        for name in ("Assam", "Darjeeling", "Oolong", "Sencha"):
            response = await client.post(
                "/good/create?projectId=1", json={"name": name, "description": f"{name} tea"}
            )
            assert response.status_code == 200, response.text
        moved = await client.patch("/good/reprioritize?id=4&projectId=1", json={"newPriority": 1})
        assert moved.status_code == 200, moved.text
    for width in (1280, 390):
        page, errors = await open_page(browser, audited_app + "/", width)
        await expect(page.locator("#recent-empty")).to_be_visible()
        await screenshot(page, f"view-orders-{width}.png")
        await page.click("nav [data-tab=catalog]")
        await expect(page.locator("#goods tbody tr")).to_have_count(4)
        await screenshot(page, f"view-catalog-{width}.png")
        await page.click("nav [data-tab=logs]")
        move = page.locator("#logs tbody tr.change", has_text="reprioritize")
        await move.get_by_role("button", name="shifted 3 goods").click(timeout=EVENTS_WITHIN_MS)
        await expect(page.locator("#logs tbody tr.shifted li")).to_have_count(3)
        await screenshot(page, f"view-logs-{width}.png")
        for tab in ("orders", "catalog", "logs"):
            await page.click(f"nav [data-tab={tab}]")
            assert await horizontal_overflow(page) == 0, (tab, width)
        assert errors == []
        await page.close()
