"""In a restored folder a file has its own name: a drawing (SVG) shows, a document saves as itself."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.sim.world import World
from tests.capture.test_restore import restore
from tests.support.browser import images_seen
from tests.support.capture import backup_finished

DRAWING = (b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48">'
           b'<rect width="64" height="48" fill="#5865f2"/></svg>')


async def test_a_restored_svg_shows_and_a_document_keeps_its_name(local_world: World, data_dir: Path,
                                                                  tmp_path: Path, cdn):  # noqa: F811
    world = local_world
    env, be = world.env, world.env.backend
    design = world.guild.create_text_channel("design")
    be.create_message(design.id, world.member("alice").id, "the new logo, and the brief", attachments=[
        cdn.attachment(env, design.id, "logo.svg", DRAWING, "image/svg+xml"),
        cdn.attachment(env, design.id, "brief v2.pdf", b"%PDF-1.4 brief", "application/pdf")], broadcast=False)
    await env.settle()
    await world.say(world.owner, f"!backup <#{design.id}>")
    assert (await backup_finished(world, design.id)).state == "done"

    dest = tmp_path / "restored"
    code, _, err = await asyncio.to_thread(restore, data_dir, f"{world.guild.id}/{design.id}", dest)
    assert code == 0, err
    [page] = dest.glob(f"discord/{world.guild.id}/{design.id}/restored/*.html")
    images = await asyncio.to_thread(images_seen, page)
    assert len(images) == 1 and images[0]["ok"] and images[0]["src"].endswith("/logo.svg"), images
    [brief] = dest.glob("files/*/brief v2.pdf")
    assert brief.read_bytes() == b"%PDF-1.4 brief"
    assert f'href="../../../../files/{brief.parent.name}/brief%20v2.pdf"' in page.read_text()
