"""Hypothesis strategies for comment text: any string a JSON body can carry, lone surrogates
included (a JSON ``"\\ud800"`` escape decodes to one), and what evasion sends."""

from hypothesis import strategies as st

INVISIBLES = "\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202e\u2060\u2066\u2069\ufeff"

# Every code point but surrogates, and lone surrogates on their own.
any_char = st.characters(exclude_categories=("Cs",))
lone_surrogate = st.integers(0xD800, 0xDFFF).map(chr)
# What evasion and odd clients actually send: letters, combining marks, invisibles between
# them, look-alikes (full-width, ligatures, Greek capitals), odd whitespace, RTL, emoji.
tricky_char = st.one_of(
    st.sampled_from("aeiouAEIOU yxz'!.-"),
    st.sampled_from(INVISIBLES),
    st.characters(categories=("Mn",)),
    st.sampled_from("\u03aa\u03ab\u1fbc\u0130\u00df\u1e9e\ufb01\uff29\u2163\u00a0\u2028\t\n"),
    st.sampled_from("\u05e9\u05dc\u05d5\u05dd\u0645\u0631\u062d\u0628\u0627"),
    st.sampled_from("🔥😂🤡👍🏽🏳️‍🌈"),
)
any_text = st.text(any_char, max_size=80)
tricky_text = st.text(tricky_char, max_size=40)
surrogate_text = st.text(st.one_of(any_char, lone_surrogate, tricky_char), max_size=40)
every_text = st.one_of(any_text, tricky_text, surrogate_text)
