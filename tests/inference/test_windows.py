"""Overlapping windows over long texts, and merging their spans back to text offsets."""

import pytest

from inference.windows import Window, merge_spans, owned_ranges, split_windows

FILLER = "这是一段没有标点的很长的中文文本用于测试切分窗口的逻辑"


def _long_text(length):
    return (FILLER * (length // len(FILLER) + 1))[:length]


def test_windows_short_text_is_one_window():
    assert split_windows("北京欢迎你", 10, 3) == [Window(0, 5)]
    assert split_windows("", 10, 3) == [Window(0, 0)]
    assert split_windows("北京。欢迎你", 10, 3) == [Window(0, 6)]


@pytest.mark.parametrize("brk", ["\n", "\r\n", "\r", "\n\n"])
def test_windows_short_text_of_several_lines_is_cut_at_each_break(brk):
    text = f"第一行{brk}张伟在北京。{brk}"
    windows = split_windows(text, 100, 3)
    assert [text[w.start : w.end] for w in windows] == [f"第一行{brk}", f"张伟在北京。{brk}"]


@pytest.mark.parametrize(
    ("length", "max_len", "overlap"), [(100, 20, 5), (257, 64, 16), (31, 30, 7)]
)
def test_windows_hard_cuts_cover_text_with_overlap(length, max_len, overlap):
    text = _long_text(length)
    windows = split_windows(text, max_len, overlap)
    assert windows[0].start == 0 and windows[-1].end == length
    for window in windows:
        assert 0 < window.end - window.start <= max_len
    for left, right in zip(windows, windows[1:], strict=False):
        assert left.end == left.start + max_len
        assert left.end - right.start == overlap


def test_windows_of_a_long_text_are_its_sentences():
    sentences = ["张三在北京工作。", "李四去了上海！", "王五喜欢杭州吗？", "赵六住在深圳；"] * 6
    text = "".join(sentences)
    windows = split_windows(text, 20, 4)
    assert [text[w.start : w.end] for w in windows] == sentences


def test_windows_keep_closing_quotes_and_whitespace_with_their_sentence():
    text = "他说：“我在北京。”\n\n她问：“你呢？！”  " + "好" * 30
    windows = split_windows(text, 20, 4)
    assert [text[w.start : w.end] for w in windows][:2] == [
        "他说：“我在北京。”\n\n",
        "她问：“你呢？！”  ",
    ]
    assert windows[-1].end == len(text)


def test_windows_cut_a_long_sentence_with_overlap_after_its_start():
    text = "短句。" + _long_text(60)
    windows = split_windows(text, 20, 4)
    assert windows[0] == Window(0, 3)
    assert windows[1] == Window(3, 23)
    for left, right in zip(windows[1:], windows[2:], strict=False):
        assert left.end - right.start == 4
    assert windows[-1].end == len(text)


def test_windows_a_text_that_fits_is_one_window_whatever_it_holds():
    assert split_windows("张三在北京。李四在上海。", 20, 4) == [Window(0, 12)]


def test_windows_overlap_is_capped_so_windows_advance():
    windows = split_windows(_long_text(50), 8, 100)
    assert windows[-1].end == 50
    assert all(right.start > left.start for left, right in zip(windows, windows[1:], strict=False))
    with pytest.raises(ValueError):
        split_windows("abc", 0, 0)


def test_windows_owned_ranges_partition_the_text():
    windows = split_windows(_long_text(300), 40, 10)
    ranges = owned_ranges(windows)
    assert ranges[0][0] == 0 and ranges[-1][1] == 300
    for (lo, hi), window in zip(ranges, windows, strict=True):
        assert window.start <= lo < hi <= window.end
    for (_, hi), (lo, _) in zip(ranges, ranges[1:], strict=False):
        assert hi == lo


def _oracle(text_len, gold, window):
    """What a perfect model sees through one window: every entity clipped to the window;
    an entity cut by the window's edge is found partially, with a lower score."""
    found = []
    for start, end, label in gold:
        lo, hi = max(start, window.start), min(end, window.end)
        if lo < hi:
            whole = (lo, hi) == (start, end)
            found.append((lo - window.start, hi - window.start, label, 0.9 if whole else 0.5))
    return found


@pytest.mark.parametrize(("max_len", "overlap"), [(20, 6), (16, 5), (33, 8)])
def test_windows_merge_recovers_entities_straddling_borders(max_len, overlap):
    text = _long_text(200)
    windows = split_windows(text, max_len, overlap)
    cuts = [window.end for window in windows[:-1]] + [window.start for window in windows[1:]]
    # An entity across every cut and every window start, each no longer than the overlap.
    gold = set()
    taken = set()
    for index, cut in enumerate(sorted(cuts)):
        size = 2 + index % 3
        span = (cut - 1, cut - 1 + size)
        if span[1] <= 200 and not taken & set(range(*span)):
            gold.add((*span, ["PER", "LOC", "ORG"][index % 3]))
            taken |= set(range(*span))
    gold = sorted(gold)
    assert any(w.start < s < w.end < e for s, e, _ in gold for w in windows)
    per_window = [_oracle(200, gold, window) for window in windows]
    merged = merge_spans(windows, per_window, 200)
    assert [(s, e, label) for s, e, label, _ in merged] == gold
    assert all(score == 0.9 for *_, score in merged)


def test_windows_merge_takes_entity_from_window_furthest_from_edge():
    windows = [Window(0, 20), Window(14, 34)]
    # global [15, 17): 3 from window 0's cut, 1 from window 1's; [17, 19): the reverse
    per_window = [[(15, 17, "A", 0.5), (17, 19, "A", 0.9)], [(1, 3, "B", 0.9), (3, 5, "B", 0.5)]]
    assert merge_spans(windows, per_window, 34) == [(15, 17, "A", 0.5), (17, 19, "B", 0.5)]


def test_windows_merge_drops_cut_partial_overlapping_whole_entity():
    windows = [Window(0, 20), Window(14, 34)]
    per_window = [[(16, 20, "ORG", 0.99)], [(2, 8, "ORG", 0.6)]]
    assert merge_spans(windows, per_window, 34) == [(16, 22, "ORG", 0.6)]


def test_windows_merge_text_edges_are_not_cuts():
    windows = [Window(0, 20), Window(14, 34)]
    per_window = [[(0, 2, "PER", 0.8)], [(18, 20, "LOC", 0.8)]]
    assert merge_spans(windows, per_window, 34) == [(0, 2, "PER", 0.8), (32, 34, "LOC", 0.8)]


def test_windows_merge_drops_a_guess_made_at_another_windows_edge():
    # window 1 starts at 14 without the context before it and calls [14, 16) a person; window
    # 0 read the same characters well inside itself and found nothing there
    windows = [Window(0, 20), Window(14, 34)]
    per_window = [[(2, 4, "LOC", 0.9)], [(0, 2, "PER", 0.95), (10, 12, "ORG", 0.8)]]
    assert merge_spans(windows, per_window, 34) == [(2, 4, "LOC", 0.9), (24, 26, "ORG", 0.8)]
    # the same guess at window 0's right edge, where window 1 found nothing
    per_window = [[(18, 20, "PER", 0.95)], []]
    assert merge_spans(windows, per_window, 34) == []
