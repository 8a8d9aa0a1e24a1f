"""The Train form: one widget per knob of core.models, drawn from the knobs themselves.

A widget's bounds and choices are its knob's, so it can never accept a value that validation
refuses. A shared link's values that no widget can show stay as the link's (see
core.train_form.Link) and are named against their field until the visitor changes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st

from core import train_form
from core.models import BLOCK_SPECS, CONFIG_SPECS, MAX_BLOCKS, PRESETS, SPECS, ModelConfig, Spec
from core.train_form import block_key, key

if TYPE_CHECKING:
    from streamlit.delta_generator import DeltaGenerator

FORM_COPY = "train_form"
"""A plain copy of the form's values: Streamlit drops a widget's value when its page is left."""
OVERRIDES = "train_overrides"
NOTES = "train_link_notes"
PRESET_HELP = (
    "tutorial: the classic Keras example. fast: ≥99% in the least CPU time we measured. "
    "robust: augmentation, for real drawings. custom: your own."
)


@dataclass
class FormResult:
    """What the form describes, and what is wrong with it."""

    config: ModelConfig
    errors: dict[str, str]
    unshown: list[str]
    """Messages not drawn next to any field (shown under the Train button)."""


def init_state(params: dict[str, str], available: int) -> None:
    """Fill the form on a session's first visit from the link, or again from its plain copy."""
    state = st.session_state
    if key("blocks") not in state:
        if params or FORM_COPY not in state:
            link = train_form.read_link(params, available)
            state.update(link.state)
            state[OVERRIDES], state[NOTES] = link.overrides, link.notes
        else:
            state.update(state[FORM_COPY])
    for k, v in state.get(FORM_COPY, {}).items():
        state.setdefault(k, v)  # a hidden block's fields, dropped with their widgets
    state.setdefault(OVERRIDES, {})


def _apply_preset() -> None:
    """Fill every field from the chosen preset (keeping the data size)."""
    state = st.session_state
    name = state[key("preset")]
    if name in PRESETS:
        keep = {k: state[k] for k in (key("subset"), key("train_samples"))}
        state.update(train_form.to_state(PRESETS[name], state[key("train_samples")]) | keep)
        state[OVERRIDES] = {}
    state.pop(NOTES, None)


def _changed(widget: str) -> None:
    """The visitor changed a field: a custom setup now, and the link's value for it is gone."""
    st.session_state[key("preset")] = "custom"
    train_form.forget_override(st.session_state[OVERRIDES], widget)
    st.session_state.pop(NOTES, None)


def _use_shown_values() -> None:
    st.session_state[OVERRIDES] = {}
    st.session_state.pop(NOTES, None)


def _number(spec: Spec, hi: float | None = None) -> tuple:
    cast = int if spec.kind is int else float
    step = spec.knob.step if spec.knob.step is not None else (1 if spec.kind is int else None)
    return (
        cast(spec.knob.lo),
        cast(hi if hi is not None else spec.knob.hi),
        None if step is None else cast(step),
    )


def widget(
    container: DeltaGenerator,
    spec: Spec,
    widget_key: str,
    label: str | None = None,
    hi: float | None = None,
    disabled: bool = False,
) -> None:
    """The widget a knob asks for, bounded by the knob (or by `hi`, when less is available)."""
    k = spec.knob
    common = dict(
        key=widget_key,
        help=k.help,
        on_change=_changed,
        args=(widget_key,),
        disabled=disabled,
    )
    label = label or k.label
    if k.widget in ("number", "slider"):
        lo, top, step = _number(spec, hi)
        if k.widget == "number":
            container.number_input(label, lo, top, step=step, format=k.fmt, **common)
        else:
            container.slider(label, lo, top, step=step, **common)
    elif k.widget == "select":
        container.selectbox(label, k.choices, **common)
    elif k.widget == "radio":
        container.radio(label, k.choices, horizontal=True, **common)
    elif k.widget == "toggle":
        container.toggle(label, **common)
    else:
        container.checkbox(label, **common)


class _Errors:
    """Shows each message next to its field, once; remembers what was shown."""

    def __init__(self, errors: dict[str, str]):
        self.errors, self.shown = errors, set()

    def show(self, *paths: str) -> None:
        for path in paths:
            if path in self.errors and path not in self.shown:
                st.error(self.errors[path], icon=":material/error:")
                self.shown.add(path)


def _row(specs: list[Spec], errors: _Errors, state) -> None:
    for start in range(0, len(specs), 3):
        chunk = specs[start : start + 3]
        for col, spec in zip(st.columns(3), chunk, strict=False):
            needs = spec.knob.needs
            widget(col, spec, key(spec.name), disabled=bool(needs) and not state[key(needs)])
        errors.show(*(spec.name for spec in chunk))


def _section(name: str) -> list[Spec]:
    return [spec for spec in CONFIG_SPECS if spec.knob.section == name]


def _blocks(errors: _Errors, state) -> None:
    for i in range(state[key("blocks")]):
        cols = st.columns([0.2, 0.17, 0.17, 0.2, 0.26], vertical_alignment="bottom")
        for col, spec in zip(cols, BLOCK_SPECS, strict=True):
            label = f"Block {i + 1} {spec.label.lower()}" if spec is BLOCK_SPECS[0] else None
            widget(col, spec, block_key(i, spec.name), label)
        errors.show(*(f"conv_blocks[{i}].{spec.name}" for spec in BLOCK_SPECS))


def _network(errors: _Errors, state) -> None:
    st.markdown("**Network**")
    network = _section("network")
    c1, c2, c3 = st.columns(3)
    c1.number_input(
        "Conv blocks",
        1,
        MAX_BLOCKS,
        key=key("blocks"),
        on_change=_changed,
        args=(key("blocks"),),
        help="Each block: convolutions, then 2×2 max pooling and dropout.",
    )
    for col, spec in zip((c2, c3), network[:2], strict=True):
        widget(col, spec, key(spec.name))
    errors.show("conv_blocks", *(spec.name for spec in network[:2]))
    _blocks(errors, state)
    _row(network[2:], errors, state)


def _data(errors: _Errors, state, available: int, examples: int) -> None:
    st.markdown("**Data**")
    c1, c2 = st.columns(2)
    c1.toggle(
        "Use only part of the training set",
        key=key("subset"),
        help="A few thousand digits train in seconds: good for a quick try.",
    )
    widget(
        c2,
        SPECS["train_samples"],
        key("train_samples"),
        hi=available,
        disabled=not state[key("subset")],
    )
    errors.show("train_samples")
    st.checkbox(
        f"Add my {examples} labelled drawing(s) from the Draw page",
        key="train_use_examples",
        disabled=examples == 0,
        help="Drawings you corrected on the Draw page (Teach it back) join the training digits."
        if examples
        else "Correct a drawing on the Draw page (Teach it back) to add it here.",
    )


def config_form(available: int, examples: int) -> FormResult:
    """Draw the whole form and return the configuration it describes."""
    state = st.session_state
    config = train_form.from_state(state, state[OVERRIDES])
    all_errors = config.errors(available) | train_form.override_errors(state[OVERRIDES])
    state[FORM_COPY] = {k: state[k] for k in train_form.form_keys() if k in state}
    for note in state.get(NOTES, []):
        st.warning(note, icon=":material/link:")
    if state[OVERRIDES]:
        st.warning(
            "This link holds values the form cannot take: each is named in red next to its "
            "field. Change those fields, or use the values the fields show.",
            icon=":material/link:",
        )
        st.button("Use the values shown", key="train_use_shown", on_click=_use_shown_values)
    errors = _Errors(all_errors)
    st.segmented_control(
        "Preset", [*PRESETS, "custom"], key=key("preset"), on_change=_apply_preset, help=PRESET_HELP
    )
    _network(errors, state)
    st.markdown("**Training**")
    _row(_section("training"), errors, state)
    with st.expander("Augmentation and callbacks"):
        for name in ("augmentation", "callbacks"):
            specs = _section(name)
            # A switch that others need stands on its own row.
            _row([s for s in specs if s.name in {x.knob.needs for x in specs}], _Errors({}), state)
            _row(
                [s for s in specs if s.name not in {x.knob.needs for x in specs}],
                _Errors({}),
                state,
            )
    # Under the expander, not in it: a message inside a closed expander is easy to miss.
    errors.show(*(s.name for s in _section("augmentation") + _section("callbacks")))
    _data(errors, state, available, examples)
    unshown = [m for path, m in all_errors.items() if path not in errors.shown]
    return FormResult(config, all_errors, unshown)
