"""CLI verbs ``sitewatch alerts list | show | ack | resolve | assess``: triage with who, when and why."""

from __future__ import annotations

import difflib
import json
import os
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from sitewatch.app.commands.monitor import alert_json
from sitewatch.app.options import JsonOption, WorkspaceOption, resolve_workspace

if TYPE_CHECKING:
    from sitewatch.core.types import Alert, AlertState
    from sitewatch.store.protocol import Store

alerts_app = typer.Typer(help="Alerts: list, show the evidence, acknowledge, resolve.", no_args_is_help=True)

AlertIdArgument = Annotated[str, typer.Argument(metavar="ID", help="Alert id (see `sitewatch alerts list`).")]
WhoOption = Annotated[
    str | None, typer.Option("--who", help="Analyst name recorded in the history (default: $SITEWATCH_USER; "
                                           "one of the two is required).")
]
CommentOption = Annotated[str, typer.Option("--comment", "-m", help="Why; kept in the alert's history.")]


def _who(who: str | None) -> str:
    """The analyst a triage is recorded under: named, never guessed (the login of a shared server
    account, "root", says nothing about who decided)."""
    for name in (who, os.environ.get("SITEWATCH_USER")):
        if name and name.strip():
            return name.strip()
    raise typer.BadParameter("say who is triaging: give --who NAME, or set SITEWATCH_USER=NAME once "
                             "for your shell", param_hint="--who")


def _parse_state(text: str) -> AlertState:
    from sitewatch.core.types import AlertState

    names = [s.value for s in AlertState]
    value = text.strip().lower().replace("-", "_")
    if value in names:
        return AlertState(value)
    close = difflib.get_close_matches(value, names, n=1)
    hint = f"Did you mean {close[0]!r}? " if close else ""
    raise typer.BadParameter(f"{hint}{text!r} is not an alert state; use one of {', '.join(names)}",
                             param_hint="--state")


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


@alerts_app.command("list")
def list_alerts(
    workspace: WorkspaceOption = None,
    site: Annotated[
        str | None, typer.Option("--site", "-s", help="Only this site (id, name or alias).")
    ] = None,
    state: Annotated[
        str | None,
        typer.Option("--state", help="Only alerts in this state: new, acknowledged, confirmed, benign, "
                                     "false_alarm."),
    ] = None,
    held_only: Annotated[
        bool, typer.Option("--held", help="Only the alerts held back: led by a benign hypothesis at a site "
                                          "whose benign_policy is hold.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List alerts: top priority first (those led by a benign hypothesis below), newest first within
    each; alerts a site's policy holds back are listed with --held only."""
    from sitewatch.core import words
    from sitewatch.monitor.policy import by_priority, held
    from sitewatch.store import Workspace

    wanted = _parse_state(state) if state else None
    with Workspace.open(resolve_workspace(workspace)) as ws:
        site_id = ws.site(site).id if site else None
        found = ws.alerts(site_id=site_id, state=wanted)
        sites = {s.id: s for s in ws.sites()}
        settings = ws.settings
    holding = [held(a, settings.benign_policy_for(a.site_id)) for a in found]
    alerts = by_priority([a for a, h in zip(found, holding, strict=True) if h == held_only])
    if as_json:
        typer.echo(json.dumps([alert_json(a) for a in alerts], ensure_ascii=False))
        return
    # One block per alert, not a table: the id, the image's time, p and state on the first line, never
    # cut (the id is typed into `alerts show`), then the words, which wrap at any width.
    console = _console()
    console.print(f"{len(alerts)} alert(s), top priority first, then newest", highlight=False)
    for alert in alerts:
        site_of = sites.get(alert.site_id)
        value, usual = (words.amount(alert.indicator, v) for v in (alert.value, alert.baseline))
        when, p_text = words.when(alert.acquired), words.p_value(alert.p_value)
        where = f"{site_of.name if site_of else alert.site_id} · {words.human_name(alert.zone_id, site_of)}"
        console.print(f"\n[bold]{alert.id}[/]  {when}  p = {p_text}  {words.human_name(alert.state.value)}",
                      highlight=False)
        console.print(f"  {where}", highlight=False, markup=False, soft_wrap=False)
        console.print(f"  {words.human_name(alert.indicator)}: {value} (usually {usual})",
                      highlight=False, markup=False, soft_wrap=False)
    if not held_only and any(holding):
        console.print(f"\n{sum(holding)} alert(s) led by a benign hypothesis held back by the site's "
                      "policy: `sitewatch alerts list --held`", highlight=False)


def _show_json(ws: Store, alert: Alert) -> dict[str, Any]:
    from sitewatch.monitor.lifecycle import track_record

    record = track_record(ws.alerts(site_id=alert.site_id, until=alert.acquired), before=alert.acquired)
    series = (ws.indicators(alert.site_id, zone_id=alert.zone_id, name=alert.indicator)
              if alert.zone_id else [])
    recent = [v for v in series if v.acquired <= alert.acquired][-12:]
    from sitewatch.core.types import latest_picks

    assessments = ws.assessments(alert.id)
    return {
        **alert_json(alert),
        "history": [
            {"state": e.state.value, "who": e.who, "when": e.when.isoformat(), "comment": e.comment}
            for e in ws.alert_history(alert.id)
        ],
        "track_record": record.as_dict(),
        "track_record_text": record.describe(),
        "recent_values": [
            {"observation_id": v.observation_id, "acquired": v.acquired.isoformat(), "value": v.value,
             "quality": v.quality}
            for v in recent
        ],
        "assessments": [
            {"author": a.author, "created": a.created.isoformat(), "judgement": a.judgement.value,
             "confidence": a.confidence.value, "text": a.text, "pick": a.pick}
            for a in assessments
        ],
        "picks": latest_picks(assessments),
    }


@alerts_app.command("show")
def show_alert(alert_id: AlertIdArgument, workspace: WorkspaceOption = None,
               as_json: JsonOption = False) -> None:
    """Show an alert's evidence: zone, indicator, value against baseline, p-value, history, track record."""
    from sitewatch.core import words
    from sitewatch.core.timeutil import parse_utc
    from sitewatch.store import Workspace

    with Workspace.open(resolve_workspace(workspace)) as ws:
        data = _show_json(ws, ws.alert(alert_id))
        site = ws.site(data["site_id"])
        site_name = site.name
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False))
        return
    console = _console()
    acquired = words.when(parse_utc(data["acquired"]))
    console.print(f"[bold]{data['id']}[/]  {site_name}  {acquired}  state: "
                  f"{words.human_name(data['state'])}")
    indicator = words.human_name(data["indicator"])
    console.print(f"  zone:        {words.human_name(data['zone_id'], site)}")
    console.print(f"  indicator:   {indicator} = {words.amount(data['indicator'], data['value'])} "
                  f"(baseline {words.amount(data['indicator'], data['baseline'])})")
    p_text = words.p_value(data["p_value"])
    console.print(f"  p-value:     {p_text}    score: {data['score']:.2f}")
    console.print(f"  observation: {data['observation_id']}")
    console.print(f"  why:         {data['explanation']}")
    if data["hypotheses"]:
        console.print("  hypotheses (most probable first, LR against the site's routine):")
        for hypothesis in data["hypotheses"]:
            console.print(f"    {hypothesis['text']}{' (benign)' if hypothesis['benign'] else ''}")
    if data["recent_values"]:
        values = ", ".join("-" if v["value"] is None else words.amount(data["indicator"], v["value"])
                           for v in data["recent_values"])
        console.print(f"  recent values of {indicator} (oldest first): {values}")
    console.print(f"  track record: {data['track_record_text']}")
    console.print("  history:")
    for event in data["history"]:
        comment = f" — {event['comment']}" if event["comment"] else ""
        when, state_words = words.when(parse_utc(event["when"])), words.human_name(event["state"])
        console.print(f"    {when}  {state_words:<13} by {event['who']}{comment}")
    for assessment in data["assessments"]:
        pick = f"; picks {assessment['pick']}" if assessment["pick"] else ""
        console.print(f"  assessment by {assessment['author']}: {assessment['judgement']} "
                      f"({assessment['confidence']} confidence{pick}) {assessment['text']}")
    if data["picks"]:
        agree = "analysts agree" if len(set(data["picks"].values())) == 1 else "analysts DISAGREE"
        picks = "; ".join(f"{who}: {pick}" for who, pick in data["picks"].items())
        console.print(f"  hypothesis picks ({agree}): {picks}")


def _move(workspace: WorkspaceOption, alert_id: str, target: AlertState, who: str | None, comment: str,
          as_json: bool) -> None:
    from sitewatch.store import Workspace

    name = _who(who)
    with Workspace.open(resolve_workspace(workspace)) as ws:
        current = ws.alert(alert_id)  # for the message only: the store checks the move as it makes it
        alert = ws.set_alert_state(alert_id, target, who=name, comment=comment)
    if as_json:
        typer.echo(json.dumps(alert_json(alert), ensure_ascii=False))
        return
    _console().print(f"{alert.id}: {current.state.value} → {alert.state.value}")


@alerts_app.command("ack")
def acknowledge(alert_id: AlertIdArgument, workspace: WorkspaceOption = None, who: WhoOption = None,
                comment: CommentOption = "", as_json: JsonOption = False) -> None:
    """Acknowledge an alert: someone is looking at it."""
    from sitewatch.core.types import AlertState

    _move(workspace, alert_id, AlertState.ACKNOWLEDGED, who, comment, as_json)


@alerts_app.command("resolve")
def resolve(
    alert_id: AlertIdArgument,
    verdict: Annotated[str, typer.Option("--as", help="confirmed, benign or false-alarm.")],
    workspace: WorkspaceOption = None,
    who: WhoOption = None,
    comment: CommentOption = "",
    as_json: JsonOption = False,
) -> None:
    """Resolve an alert. Benign activity and false alarms rejoin the site's baseline; confirmed stays out."""
    from sitewatch.monitor.lifecycle import parse_resolution

    _move(workspace, alert_id, parse_resolution(verdict), who, comment, as_json)


@alerts_app.command("assess")
def assess(
    alert_id: AlertIdArgument,
    judgement: Annotated[str, typer.Option("--judgement", help="How likely the activity is of concern, in "
                                           "estimative words: almost no chance ... almost certain.")],
    confidence: Annotated[str, typer.Option("--confidence", help="low, moderate or high.")],
    hypothesis: Annotated[str, typer.Option("--hypothesis", help="The alert's hypothesis you judge best "
                                            "(its pattern id, e.g. production_surge, or none); see "
                                            "`alerts show ID`.")] = "",
    text: Annotated[str, typer.Option("--text", "-m", help="Your reasoning.")] = "",
    workspace: WorkspaceOption = None,
    who: WhoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record your assessment of an alert, optionally picking one of its hypotheses. Every analyst's
    assessment is kept and `alerts show` lists each one's pick, so disagreement stays visible; when the
    alert is resolved confirmed or benign, the picks teach the site's pattern priors."""
    from datetime import UTC, datetime

    from sitewatch.core.types import Assessment, Confidence, Likelihood, latest_picks
    from sitewatch.store import Workspace

    words: dict[str, Likelihood | Confidence] = {}
    for option, kind, value in (("--judgement", Likelihood, judgement),
                                ("--confidence", Confidence, confidence)):
        try:
            words[option] = kind(value.strip().lower())
        except ValueError:
            choices = ", ".join(w.value for w in kind)
            raise typer.BadParameter(f"{value!r} is not one of: {choices}", param_hint=option) from None
    assessment = Assessment(alert_id=alert_id, author=_who(who), created=datetime.now(UTC),
                            judgement=Likelihood(words["--judgement"]),
                            confidence=Confidence(words["--confidence"]), text=text, pick=hypothesis.strip())
    with Workspace.open(resolve_workspace(workspace)) as ws:
        ws.add_assessment(assessment)
        picks = latest_picks(ws.assessments(alert_id))
    if as_json:
        typer.echo(json.dumps({"alert_id": alert_id, "author": assessment.author, "pick": assessment.pick,
                               "picks": picks}, ensure_ascii=False))
        return
    others = {who: pick for who, pick in picks.items() if who != assessment.author}
    line = f"{alert_id}: assessment by {assessment.author} recorded"
    if assessment.pick:
        line += f", picking {assessment.pick}"
    if others:
        line += "; other analysts' picks: " + "; ".join(f"{w}: {p}" for w, p in others.items())
    _console().print(line)


def register(app: typer.Typer) -> None:
    """Add the ``alerts`` verb group to ``app``."""
    app.add_typer(alerts_app, name="alerts")
