package dashboard_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wire/faults"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/scheduler"
)

// artefacts is where screenshots go: $CANO_ARTEFACTS/dashboard, or a
// test temporary directory. Never the repository.
func artefacts(t *testing.T) string {
	if d := os.Getenv("CANO_ARTEFACTS"); d != "" {
		return filepath.Join(d, "dashboard")
	}
	return t.TempDir()
}

// TestBrowser drives headless Chromium against a dev-mode coordinator: it
// triggers a run from the runs page and sees it appear and complete
// without a reload, finds the path highlighted on the run's page, cancels
// a held run from its page, resets a tripped breaker from the breakers
// page, every change arriving by server-sent events, and pauses and
// resumes a flow from the flows page.
func TestBrowser(t *testing.T) {
	b := startBrowser(t) // skips without chromium
	s := startDev(t)
	dir := artefacts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	require.Eventually(t, func() bool {
		_, e1 := s.cl.Workflow(ctx, faults.GuardedName, "")
		_, e2 := s.cl.Workflow(ctx, demo.SleepyName, "")
		return e1 == nil && e2 == nil
	}, 60*time.Second, 50*time.Millisecond)

	// 1. Trigger from the runs page; the row appears and turns completed
	// with no reload (a marker set on the window survives).
	b.open(s.base + "/runs")
	b.eval(`window.__noReload = true`)
	b.eval(`document.querySelector('form.trigger select').value = ` + jsString(demo.SleepyName))
	b.act("the trigger answered", `document.getElementById("trigger").click()`, `!!document.body.getAttribute("data-last-run")`)
	runID := b.text(`document.body.getAttribute("data-last-run")`)
	row := `document.getElementById("run-" + ` + jsString(runID) + `)`
	b.waitTrue("the run's row appears", `!!`+row)
	b.waitTrue("the run's row turns completed", row+`.classList.contains("status-completed")`)
	b.waitTrue("no reload happened", `window.__noReload === true`)
	b.screenshot(filepath.Join(dir, "runs.png"))

	// A run triggered from the form to start in an hour appears scheduled,
	// with its start, and counted so; cancelled before its start, it turns
	// cancelled and leaves the scheduled count, with no reload.
	b.eval(`document.body.removeAttribute("data-last-run"); document.querySelector('form.trigger input[name="start"]').value = "1h"`)
	b.act("the scheduled trigger answered", `document.getElementById("trigger").click()`, `!!document.body.getAttribute("data-last-run")`)
	later := b.text(`document.body.getAttribute("data-last-run")`)
	b.waitTrue("the answer says when it starts", `document.getElementById("msg").textContent.indexOf("scheduled run " + `+jsString(later)+` + " to start at ") === 0`)
	laterRow := `document.getElementById("run-" + ` + jsString(later) + `)`
	scheduledCount := `document.querySelector('[data-count="scheduled"]').textContent`
	b.waitTrue("the scheduled run's row appears scheduled", `!!`+laterRow+` && `+laterRow+`.classList.contains("status-scheduled")`)
	b.waitTrue("it is counted scheduled", scheduledCount+` === "1"`)
	b.waitTrue("its row says when it starts", laterRow+`.querySelector(".starts").textContent !== ""`)
	// Ticked and cancelled with "Cancel selected".
	b.eval(laterRow + `.querySelector('input[name="id"]').checked = true`)
	b.act("the bulk cancel answered", `document.getElementById("cancel-selected").click()`,
		`document.getElementById("msg").textContent === "cancel requested for 1 run"`)
	b.waitTrue("the scheduled run's row turns cancelled", laterRow+`.classList.contains("status-cancelled")`)
	b.waitTrue("its row has nothing left to tick", `!`+laterRow+`.querySelector('input[name="id"]')`)
	b.waitTrue("it left the scheduled count", scheduledCount+` === "0"`)
	b.waitTrue("no reload happened", `window.__noReload === true`)
	// Another, ticked and started now with "Start selected": it runs to its end.
	b.eval(`document.body.removeAttribute("data-last-run"); document.querySelector('form.trigger input[name="start"]').value = "1h"`)
	b.act("the second scheduled trigger answered", `document.getElementById("trigger").click()`, `!!document.body.getAttribute("data-last-run")`)
	early := b.text(`document.body.getAttribute("data-last-run")`)
	earlyRow := `document.getElementById("run-" + ` + jsString(early) + `)`
	b.waitTrue("its row appears scheduled", `!!`+earlyRow+` && `+earlyRow+`.classList.contains("status-scheduled")`)
	b.eval(earlyRow + `.querySelector('input[name="id"]').checked = true`)
	b.act("the bulk start answered", `document.getElementById("start-selected").click()`,
		`document.getElementById("msg").textContent === "start requested for 1 run"`)
	b.waitTrue("the started run's row turns completed", earlyRow+`.classList.contains("status-completed")`)
	b.waitTrue("no reload happened", `window.__noReload === true`)

	// 2. Its detail page: the path highlighted in the diagram.
	b.open(s.base + "/runs/" + runID)
	b.waitTrue("taken edges sleep → after → done",
		`document.querySelectorAll('svg.fsm path.edge.taken').length === 2 && !!document.querySelector('svg.fsm path.taken[data-from="sleep"][data-to="after"]') && !!document.querySelector('svg.fsm path.taken[data-from="after"][data-to="done"]')`)
	b.waitTrue("the exit is marked completed", `!!document.querySelector('svg.fsm g.node.final-completed[data-state="done"]')`)
	b.screenshot(filepath.Join(dir, "run-sleepy.png"))

	// A split run for the docs' screenshot.
	split, err := s.cl.Run(ctx, demo.WorkflowName, nil)
	require.NoError(t, err)
	b.open(s.base + "/runs/" + split.ID)
	b.waitTrue("split run's path highlighted", `document.querySelectorAll('svg.fsm path.edge.taken').length >= 2`)
	b.screenshot(filepath.Join(dir, "run-detail.png"))

	// 3. Cancel a run held in its task, from its page: the page turns
	// cancelled by itself.
	held, err := s.cl.Trigger(ctx, faults.GuardedName, &client.TriggerOpts{Input: faults.FaultInput{Hold: true}})
	require.NoError(t, err)
	b.open(s.base + "/runs/" + held)
	b.waitTrue("the held run is pulsing in its state", `!!document.querySelector('svg.fsm g.node.current[data-state="call"]')`)
	b.eval(`window.__noReload = true`)
	b.act("the page shows cancelled", `document.getElementById("cancel").click()`, `document.getElementById("run-status").textContent === "cancelled"`)
	b.waitTrue("no reload happened", `window.__noReload === true`)
	b.screenshot(filepath.Join(dir, "run-cancelled.png"))
	got, err := s.cl.Get(ctx, held)
	require.NoError(t, err)
	require.Equal(t, client.RunCancelled, got.Status)

	// A run scheduled an hour ahead, started now from its page: the page
	// follows it to its end by itself.
	soon, err := s.cl.Trigger(ctx, demo.OneTaskName, &client.TriggerOpts{StartAt: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	b.open(s.base + "/runs/" + soon)
	b.waitTrue("the run shows scheduled", `document.getElementById("run-status").textContent === "scheduled"`)
	b.eval(`window.__noReload = true`)
	b.act("the page shows completed", `document.getElementById("start-now").click()`, `document.getElementById("run-status").textContent === "completed"`)
	b.waitTrue("no reload happened", `window.__noReload === true`)

	// 4. Trip the breaker (failing calls), then reset it from the page.
	for range faults.GuardedFailureThreshold {
		_, err := s.cl.Run(ctx, faults.GuardedName, &client.TriggerOpts{Input: faults.FaultInput{Fail: true}})
		require.Error(t, err)
	}
	b.open(s.base + "/breakers")
	bk := `document.getElementById("breaker-` + faults.GuardedBreaker + `")`
	b.waitTrue("the breaker shows open", `!!`+bk+` && `+bk+`.querySelector(".state").textContent === "open"`)
	b.screenshot(filepath.Join(dir, "breakers-open.png"))
	// Its answer held back (fetch wrapped), the button stays disabled: one
	// click, one action.
	b.eval(`window.__fetch = window.fetch; window.fetch = function (u, o) { return new Promise(function (res, rej) { window.__release = function () { window.__fetch(u, o).then(res, rej); }; }); }`)
	b.eval(bk + `.querySelector("button.reset").click()`)
	b.waitTrue("the reset button is disabled until its answer", `!!window.__release && `+bk+`.querySelector("button.reset").disabled === true`)
	b.act("the breaker shows closed", `window.fetch = window.__fetch; window.__release()`, bk+`.querySelector(".state").textContent === "closed"`)
	bs, err := s.cl.Breakers(ctx)
	require.NoError(t, err)
	require.Equal(t, client.BreakerClosed, bs[0].State)

	// 5. Pause a flow from the flows page, then resume it.
	js, err := jetstream.New(s.nc)
	require.NoError(t, err)
	fc, err := scheduler.NewClient(js, scheduler.ClientConfig{})
	require.NoError(t, err)
	require.NoError(t, fc.Add(ctx, scheduler.Flow{ID: "hourly", Workflow: demo.SleepyName, Schedule: scheduler.Every(time.Hour)}))
	b.open(s.base + "/flows")
	fl := `document.getElementById("flow-hourly")`
	b.waitTrue("the flow is listed with a pause button", `!!`+fl+` && !!`+fl+`.querySelector("button.pause")`)
	b.act("the flow shows paused", fl+`.querySelector("button.pause").click()`, `!!`+fl+` && `+fl+`.querySelector(".status").textContent.startsWith("paused") && !!`+fl+`.querySelector("button.resume")`)
	b.screenshot(filepath.Join(dir, "flows-paused.png"))
	info, err := fc.Status(ctx, "hourly")
	require.NoError(t, err)
	require.True(t, info.Paused)
	b.act("the flow shows resumed", fl+`.querySelector("button.resume").click()`, `!!`+fl+` && !!`+fl+`.querySelector("button.pause")`)
	info, err = fc.Status(ctx, "hourly")
	require.NoError(t, err)
	require.False(t, info.Paused)

	// 6. A refused trigger's dead letter, ticked and deleted from its page
	// ("Delete selected" posts to its own formaction).
	_, err = s.cl.Trigger(ctx, "no_such_workflow", nil)
	require.ErrorIs(t, err, fsm.ErrConfiguration)
	var dl uint64
	require.Eventually(t, func() bool {
		dls, err := s.cl.DeadLetters(ctx, &client.DeadLetterFilter{Source: "trigger", Limit: 1})
		if err == nil && len(dls) == 1 {
			dl = dls[0].Seq
		}
		return dl != 0
	}, 20*time.Second, 20*time.Millisecond, "the dead letter")
	b.open(s.base + "/deadletters")
	dlRow := `document.getElementById("dl-` + strconv.FormatUint(dl, 10) + `")`
	b.waitTrue("the dead letter is listed", `!!`+dlRow)
	b.eval(dlRow + `.querySelector('input[name="seq"]').checked = true`)
	b.act("the dead letter is deleted", `document.getElementById("delete-selected").click()`,
		`document.getElementById("msg").textContent === "deleted 1 dead letter" && !`+dlRow)
	err = s.cl.Replay(ctx, dl)
	require.ErrorIs(t, err, client.ErrDeadLetterNotFound, "deleted, not replayed")

	for _, p := range []string{"workflows", "workers", "flows", "deadletters"} {
		b.open(s.base + "/" + p)
		b.screenshot(filepath.Join(dir, p+".png"))
	}
	b.open(s.base + "/workflows/" + demo.WorkflowName)
	b.screenshot(filepath.Join(dir, "workflow.png"))
}
