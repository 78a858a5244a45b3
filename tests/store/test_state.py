"""derive_state(): the debounce and reappearance rules, by hand-made histories."""

from datetime import UTC, datetime, timedelta

from kernel.model import CaseState, Verdict
from kernel.state import Debounce, derive_state

T0 = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)
V = Verdict


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_no_checks_is_unchecked():
    state = derive_state(T0, [])
    assert state.state is CaseState.UNCHECKED
    assert state.checks == 0


def test_served_is_online():
    state = derive_state(T0, [(h(1), V.ONLINE)])
    assert state.state is CaseState.ONLINE
    assert state.last_served_at == h(1)


def test_one_gone_check_is_not_yet_a_removal():
    state = derive_state(T0, [(h(1), V.ONLINE), (h(24), V.HTTP_GONE)])
    assert state.state is CaseState.PENDING_REMOVAL
    assert state.removed_at is None


def test_two_gone_checks_too_close_together_do_not_confirm():
    state = derive_state(T0, [(h(1), V.ONLINE), (h(24), V.HTTP_GONE), (h(30), V.HTTP_GONE)])
    assert state.state is CaseState.PENDING_REMOVAL


def test_two_gone_checks_twelve_hours_apart_confirm_removal():
    checks = [(h(1), V.ONLINE), (h(24), V.HTTP_GONE), (h(36), V.PLACEHOLDER)]
    state = derive_state(T0, checks)
    assert state.state is CaseState.REMOVED
    # The removal interval is (last served, first gone].
    assert (state.removed_after, state.removed_at) == (h(1), h(24))


def test_checks_in_any_order_give_the_same_state():
    checks = [(h(36), V.PLACEHOLDER), (h(1), V.ONLINE), (h(24), V.HTTP_GONE)]
    assert derive_state(T0, checks).state is CaseState.REMOVED


def test_transient_checks_neither_count_nor_break_the_run():
    checks = [(h(1), V.ONLINE), (h(24), V.HTTP_GONE), (h(30), V.TIMEOUT), (h(48), V.HTTP_GONE)]
    state = derive_state(T0, checks)
    assert state.state is CaseState.REMOVED
    assert state.removed_at == h(24)
    only_transient = [(h(1), V.ONLINE), (h(24), V.TIMEOUT), (h(48), V.SERVER_ERROR)]
    assert derive_state(T0, only_transient).state is CaseState.PENDING_REMOVAL


def test_transient_only_confirms_after_the_long_limit():
    checks = [(h(1), V.ONLINE)] + [(h(24 * d), V.TIMEOUT) for d in range(1, 9)]
    state = derive_state(T0, checks)
    assert state.state is CaseState.REMOVED
    assert state.removed_at == h(24)  # the first failing check
    short = checks[:7]  # six days of timeouts
    assert derive_state(T0, short).state is CaseState.PENDING_REMOVAL


def test_a_served_check_resets_the_gone_run():
    checks = [(h(0), V.HTTP_GONE), (h(10), V.ONLINE), (h(24), V.HTTP_GONE)]
    assert derive_state(T0, checks).state is CaseState.PENDING_REMOVAL


def test_served_after_removal_is_a_reappearance_and_the_clock_restarts():
    checks = [(h(1), V.ONLINE), (h(24), V.HTTP_GONE), (h(48), V.HTTP_GONE),
              (h(72), V.ONLINE)]
    state = derive_state(T0, checks)
    assert state.state is CaseState.REAPPEARED
    assert state.reappearances == 1
    assert state.removed_at is None
    again = checks + [(h(96), V.HTTP_GONE), (h(120), V.HTTP_GONE)]
    state = derive_state(T0, again)
    assert state.state is CaseState.REMOVED
    assert state.reappearances == 1
    assert (state.removed_after, state.removed_at) == (h(72), h(96))


def test_never_served_uses_the_report_as_last_seen():
    state = derive_state(T0, [(h(24), V.NXDOMAIN), (h(48), V.NXDOMAIN)])
    assert state.state is CaseState.REMOVED
    assert state.removed_after == T0
    assert state.last_served_at is None


def test_changed_counts_as_the_material_gone():
    checks = [(h(1), V.ONLINE), (h(24), V.CHANGED), (h(48), V.CHANGED)]
    assert derive_state(T0, checks).state is CaseState.REMOVED


def test_blocked_checks_are_ignored():
    checks = [(h(1), V.ONLINE), (h(24), V.BLOCKED_ADDRESS)]
    state = derive_state(T0, checks)
    assert state.state is CaseState.ONLINE
    assert state.checks == 2


def test_settings_change_the_rule():
    checks = [(h(1), V.ONLINE), (h(24), V.HTTP_GONE), (h(36), V.HTTP_GONE)]
    strict = Debounce(confirmations=3, min_hours=12, transient_days=7)
    assert derive_state(T0, checks, strict).state is CaseState.PENDING_REMOVAL
    quick = Debounce(confirmations=1, min_hours=0, transient_days=7)
    assert derive_state(T0, checks[:2], quick).state is CaseState.REMOVED


def test_gone_checks_older_than_a_late_report_give_no_inverted_interval():
    # An imported log: the URL was missed twice before the report was filed.
    checks = [(h(-48), V.HTTP_GONE), (h(-24), V.HTTP_GONE)]
    state = derive_state(T0, checks)
    assert state.state is CaseState.REMOVED
    # Nothing showed it served before the first miss: only the upper bound is known.
    assert (state.removed_after, state.removed_at) == (None, h(-48))


def test_the_report_is_a_sighting_later_than_an_older_served_check():
    checks = [(h(-24), V.ONLINE), (h(24), V.HTTP_GONE), (h(48), V.HTTP_GONE)]
    state = derive_state(T0, checks)
    assert (state.removed_after, state.removed_at) == (T0, h(24))


def test_a_report_filed_inside_the_removal_interval_is_not_a_sighting_after_it():
    checks = [(h(-48), V.ONLINE), (h(-24), V.HTTP_GONE), (h(-6), V.HTTP_GONE)]
    state = derive_state(T0, checks)
    assert (state.removed_after, state.removed_at) == (h(-48), h(-24))


def test_a_served_and_a_gone_check_at_the_same_moment_keep_their_order():
    same = h(24)
    state = derive_state(T0, [(same, V.ONLINE), (same, V.HTTP_GONE), (h(48), V.HTTP_GONE)])
    assert state.state is CaseState.REMOVED
    assert (state.removed_after, state.removed_at) == (same, same)


# -- checks of suspect runs (#10 point 8) -----------------------------------------

def test_failing_checks_of_a_suspect_run_count_toward_no_removal():
    served = [(h(1), V.ONLINE)]
    broken = [(h(24), V.NXDOMAIN), (h(48), V.NXDOMAIN), (h(24 * 9), V.DNS_ERROR)]
    state = derive_state(T0, served, held=broken)
    assert state.state is CaseState.ONLINE  # not removed, not even pending
    assert state.removed_at is None
    # shown: the newest check and the count include them...
    assert (state.last_verdict, state.last_checked_at, state.checks) == (V.DNS_ERROR,
                                                                        h(24 * 9), 4)
    # ...but the scheduler's clock does not move, and they await confirmation
    assert state.last_counted_at == h(1)
    assert state.unconfirmed == 3


def test_a_served_check_of_a_suspect_run_counts():
    checks = [(h(1), V.ONLINE), (h(24), V.HTTP_GONE), (h(48), V.HTTP_GONE)]
    state = derive_state(T0, checks, held=[(h(72), V.ONLINE)])
    assert state.state is CaseState.REAPPEARED
    assert (state.last_served_at, state.last_counted_at, state.unconfirmed) == (h(72), h(72), 0)


def test_a_healthy_run_confirms_with_gone_checks_of_its_own():
    """The removal interval runs to the first gone check of a healthy run: a
    suspect gone check before it does not narrow it."""
    served = [(h(1), V.ONLINE)]
    held = [(h(24), V.HTTP_GONE)]
    one = derive_state(T0, [*served, (h(48), V.HTTP_GONE)], held=held)
    assert one.state is CaseState.PENDING_REMOVAL  # one counted gone check so far
    assert one.unconfirmed == 0  # a later counted check has taken over
    two = derive_state(T0, [*served, (h(48), V.HTTP_GONE), (h(72), V.HTTP_GONE)], held=held)
    assert two.state is CaseState.REMOVED
    assert (two.removed_after, two.removed_at) == (h(1), h(48))


def test_a_healthy_run_that_finds_it_served_clears_held_failures():
    state = derive_state(T0, [(h(1), V.ONLINE), (h(48), V.ONLINE)],
                         held=[(h(24), V.NXDOMAIN)])
    assert (state.state, state.unconfirmed, state.last_counted_at) == (CaseState.ONLINE, 0,
                                                                       h(48))


def test_blocked_checks_do_not_move_the_schedulers_clock():
    state = derive_state(T0, [(h(1), V.ONLINE), (h(24), V.BLOCKED_ADDRESS)])
    assert (state.last_checked_at, state.last_counted_at) == (h(24), h(1))
    held = derive_state(T0, [(h(1), V.ONLINE)], held=[(h(24), V.BLOCKED_ADDRESS)])
    assert (held.last_checked_at, held.last_counted_at, held.checks) == (h(24), h(1), 2)
