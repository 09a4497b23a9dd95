"""The demo city's people are plausible: Chinese unit names, probationary members admitted lately, genders by name;
every site reports its workforce from the day it starts."""
from __future__ import annotations

from contracts.membership import Gender, MemberStatus, RegisterSite, ReportWorkforce, SubmitApplication, UnitKind
from gongdi.demo import city, development
from gongdi.demo.city import MEMBERS, START, WORKERS, roster
from gongdi.demo.development import DEVELOPED_PER_PILOT, developed


def members() -> list:
    return [facts for present in roster().values() for _, facts in present]


def test_unit_names_are_chinese_with_no_enum_code():
    codes = {k.value for k in UnitKind}
    for facts in members():
        assert not any(code in facts.unit_name for code in codes), facts.unit_name


def test_probationary_members_were_admitted_within_two_years_of_arriving_and_the_figures_stay():
    present = [(m, f) for people in roster().values() for m, f in people]
    paths = developed(city.base_roster())
    admitted_here = {p.person_id for p in paths}
    probationary = [(m, f) for m, f in present if f.status is MemberStatus.probationary]
    # The seed's figures: 251 members, 52 of them probationary, 28 of whom were admitted on the pilots in 2020.
    assert (len(present), len(probationary), len(paths)) == (MEMBERS, 52, sum(DEVELOPED_PER_PILOT.values()))
    assert admitted_here <= {m for m, _ in probationary} and all(p.admitted_on.year == 2020 for p in paths)
    for member_id, facts in probationary:
        if member_id not in admitted_here:  # arrived on the first day (START), probation not yet over
            assert 0 < (START - facts.admitted_on).days <= 2 * 366, (facts.name, facts.admitted_on)


def test_genders_go_with_the_given_names():
    for facts in members():
        given = facts.name[1:]
        assert (facts.gender is Gender.female) == (given in city.FEMALE_GIVEN), facts.name
    for phase in city.development_plan():
        for command in phase:
            if isinstance(command, SubmitApplication):
                names = development.FEMALE_GIVEN if command.person_id.startswith("a") else city.FEMALE_GIVEN
                female = command.name[1:] in names
                assert (command.gender is Gender.female) == female, command.name


def test_every_site_reports_its_workforce_from_its_start_and_the_year_end_figure_stays():
    commands = [(phase, c) for phase, cs in enumerate(city.plan() + city.development_plan()) for c in cs]
    started = {c.site_id: (phase, c.start_date) for phase, c in commands if isinstance(c, RegisterSite)}
    reports: dict[str, list[tuple[int, ReportWorkforce]]] = {}
    for phase, c in commands:
        if isinstance(c, ReportWorkforce):
            reports.setdefault(c.site_id, []).append((phase, c))
    assert reports.keys() == started.keys()
    for site_id, told in reports.items():
        registered, start = started[site_id]
        # An as-of view shows each site's workforce from the day it starts (2020-06-30 is no longer 0).
        assert min(c.as_of for _, c in told) == start, site_id
        assert all(phase > registered for phase, _ in told), site_id  # sent once the site exists
        # Every report of a site tells one headcount: whichever is recorded last (a folder seeded by an older
        # demo holds the 2020-08-31 report already), the live figure and the year's end stay the report's.
        assert len({c.headcount for _, c in told}) == 1, site_id
    assert sum(told[-1][1].headcount for told in reports.values()) == WORKERS
