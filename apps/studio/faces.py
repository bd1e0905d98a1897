"""The face picker of the portrait and scene tabs (issues 15 and 20): on a photo with several faces, a gallery of
the detected faces (numbered left to right from 0, the ``--face N`` of the CLI) where a click on a thumbnail — or
on the face in the photo's preview — chooses the face to animate. The choice lands in the tab's "Face" box, which
still takes ``auto``, ``largest``, ``center`` or a number typed by hand; the render's ``face=`` reads that box.

The faces come from :func:`affectstudio.conditioning.face_choice.list_faces`, the same detection and order the
pipeline uses, so the number shown is the face that is animated."""

from __future__ import annotations

from typing import Optional

import gradio as gr

from affectstudio.conditioning.face_choice import FACE_RULES, DetectedFace, face_at, list_faces
from affectstudio.errors import InputError

NO_CHOICE = "*One face or none found: the face box says which one is animated (auto).*"


def face_picker(upload: gr.File, preview: gr.Image, elem_id: str) -> gr.Dropdown:
    """The "Face" box with its gallery under it, wired to ``upload`` (the photo's file box) and ``preview`` (the
    photo as shown: a click on it picks the face under the pointer). Returns the box, an input of the render."""
    face = gr.Dropdown(
        list(FACE_RULES),
        value="auto",
        allow_custom_value=True,
        label="Face in a group photo",
        info="auto, largest, center, or a number: 0 is the leftmost face, 1 the next, … — or click a face below",
        elem_id=elem_id,
    )
    found = gr.State([])  # the DetectedFace list of the current photo (boxes for a click on the preview)
    gallery = gr.Gallery(
        label="Faces found — click one to animate it",
        columns=6,
        rows=1,
        height=175,
        allow_preview=False,
        object_fit="contain",
        visible=False,
        elem_id=f"{elem_id}-gallery",
    )
    chosen = gr.Markdown(visible=False, elem_id=f"{elem_id}-chosen")
    upload.change(find_faces, [upload], [found, gallery, face, chosen], concurrency_limit=4, show_progress="hidden")
    gallery.select(pick_thumbnail, [found], [face, chosen], queue=False)
    preview.select(pick_at_click, [found], [face, gallery, chosen], queue=False)
    return face


def find_faces(path):
    """After an upload: the faces of the photo, a gallery when there are two or more, the box back to ``auto``.
    An unreadable photo shows nothing here (the preview says what is wrong)."""
    hidden = gr.update(value=None, visible=False)
    if not path:
        return [], hidden, "auto", gr.update(visible=False)
    try:
        faces = list_faces(path)
    except InputError:
        return [], hidden, "auto", gr.update(visible=False)
    if len(faces) < 2:
        return faces, hidden, "auto", gr.update(visible=False)
    items = [(f.thumbnail, f.label) for f in faces]
    auto = next(f for f in faces if f.auto)
    message = (
        f"**{len(faces)} faces found** (numbered 0-{len(faces) - 1} left to right). Auto animates face {auto.index}; "
        "click a thumbnail or a face in the photo to choose another."
    )
    return (
        faces,
        gr.update(value=items, visible=True, selected_index=None),
        "auto",
        gr.update(value=message, visible=True),
    )


def pick_thumbnail(faces: list[DetectedFace], evt: gr.SelectData):
    """A click on the gallery's thumbnail ``evt.index``: that face's number into the box."""
    return _choose(faces, int(evt.index))


def pick_at_click(faces: list[DetectedFace], evt: gr.SelectData):
    """A click on the photo's preview at ``evt.index == [x, y]`` (photo pixels): the face under it, if any."""
    if not faces:
        return gr.update(), gr.update(), gr.update()
    x, y = evt.index
    n = face_at(faces, float(x), float(y))
    if n is None:
        gr.Info("No face there: click on a face (or a thumbnail under the face box).")
        return gr.update(), gr.update(), gr.update()
    face, chosen = _choose(faces, n)
    return face, gr.update(selected_index=n), chosen


def _choose(faces: list[DetectedFace], n: int):
    picked: Optional[DetectedFace] = next((f for f in faces if f.index == n), None)
    if picked is None:
        return gr.update(), gr.update()
    return str(n), gr.update(
        value=f"**Face {n} of {len(faces)}** ({picked.width} px wide) will be animated.", visible=True
    )
