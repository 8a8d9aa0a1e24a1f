"""Who is using this browser: a visitor identity that survives reloads, and the operator's key.

Each browser gets a random visitor id in a cookie (never in the URL). Jobs, runs and labelled
drawings record only a tag derived from it (a one-way hash), so the runs folder and the pages never
show the id itself; the tag's first characters name a visitor anonymously ("visitor a3f1").
An operator who knows the admin token (DIGITLAB_ADMIN_TOKEN, in the environment or Streamlit's
secrets) unlocks moderation for their session: stop any job, delete any run.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid

import streamlit as st

from ui import resources

COOKIE = "digitlab_visitor"
COOKIE_DAYS = 400  # the longest lifetime browsers keep a cookie for
ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
ID_KEY, ADMIN_KEY = "visitor_id", "visitor_admin"
ADMIN_SETTING = "DIGITLAB_ADMIN_TOKEN"

_JS = """
export default function (component) {
  const { data } = component;
  if (data && data.value && !document.cookie.includes(data.name + "=" + data.value)) {
    document.cookie = `${data.name}=${data.value}; max-age=${data.seconds}; path=/; SameSite=Lax`;
  }
}
"""
_cookie_setter = st.components.v2.component("digitlab_visitor_cookie", js=_JS)


def tag_of(visitor_id: str) -> str:
    """The anonymous tag stored with a visitor's work: a one-way hash of their id."""
    return hashlib.sha256(visitor_id.encode()).hexdigest()[:16]


def display_name(owner: str | None, me: str | None = None) -> str:
    """How an owner tag is shown: you, another visitor (by a short tag), or the deployment."""
    if owner is None:
        return "the deployment"
    if owner == me:
        return "you"
    return f"visitor {owner[:4]}"


def _session_id() -> str:
    """This session's visitor id: the browser's cookie, or a new one the browser is given."""
    state = st.session_state
    if ID_KEY not in state:
        cookie = str(st.context.cookies.get(COOKIE) or "")
        state[ID_KEY] = cookie if ID_PATTERN.fullmatch(cookie) else uuid.uuid4().hex
    return state[ID_KEY]


def identify() -> None:
    """Every page's first step: make sure the browser keeps this session's visitor id."""
    visitor_id = _session_id()
    if st.context.cookies.get(COOKIE) != visitor_id:
        # Sets the cookie in the browser; it is sent with every later connection (reloads too).
        _cookie_setter(
            key="visitor_cookie",
            data={"name": COOKIE, "value": visitor_id, "seconds": COOKIE_DAYS * 86400},
            height=0,
        )


def me() -> str:
    """This visitor's owner tag."""
    return tag_of(_session_id())


def is_admin() -> bool:
    """Whether this session unlocked moderation with the admin token."""
    return bool(st.session_state.get(ADMIN_KEY))


def may_change(owner: str | None) -> bool:
    """Only the owner (or an operator) may stop, rename or delete something. The deployment's
    own things (no owner: command-line runs, unreadable folders) are the operator's; without an
    admin token the install is personal, and they are anyone's."""
    if is_admin() or (owner is not None and owner == me()):
        return True
    return owner is None and not resources.setting(ADMIN_SETTING)


def _check_token() -> None:
    token = resources.setting(ADMIN_SETTING)
    given = st.session_state.get("visitor_token", "")
    ok = bool(token) and hmac.compare_digest(given.encode(), token.encode())
    st.session_state[ADMIN_KEY] = ok
    st.session_state["visitor_token_wrong"] = bool(given) and not ok


def operator_box() -> None:
    """The sidebar's operator login, shown only when the deployment set an admin token."""
    if not resources.setting(ADMIN_SETTING):
        return
    with st.sidebar.expander("Operator", icon=":material/shield_person:", expanded=is_admin()):
        if is_admin():
            st.caption("Moderation is on: you may stop any job and delete any run.")
            if st.button("Lock again", key="visitor_lock"):
                st.session_state[ADMIN_KEY] = False
                st.session_state["visitor_token"] = ""
                st.rerun()
            return
        st.text_input("Admin token", type="password", key="visitor_token", on_change=_check_token)
        if st.session_state.get("visitor_token_wrong"):
            st.error("That is not the admin token.")
