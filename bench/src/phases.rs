//! The phases of one benchmark invocation and the report they add up to.
//! Raw pods and runs go through the same code (`Subject`), one after the
//! other, against the same cluster and controller.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DynamicObject, ListParams, PostParams};
use kube::{Api, Client};

use crate::objects::{self, Placement};
use crate::process::{Controller, Usage};
use crate::stats::{Sample, ms};
use crate::watch::{Tracker, run_is_finished};
use crate::{Options, Which};

/// What a phase creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    RawPods,
    /// Per id, a custom object and then a raw pod, both by the client: the
    /// least API work any controller must cause for a run (the run's create
    /// and its pod's), without a controller in between. Its rate bounds
    /// what the runs can reach on this cluster.
    ObjectAndPod,
    /// Raw pods shaped as a run's pod (copied from one the controller
    /// made; see `objects::run_shaped_pod`): what the runs' pods cost the
    /// node, without the controller.
    RunShapedPods,
    Runs,
}

/// The measurements of one phase.
pub struct Phase {
    pub name: String,
    pub count: usize,
    pub pods_seen: usize,
    pub finished: usize,
    pub to_pod: Sample,
    pub to_finish: Sample,
    /// From the first create to the last pod seen (controller-only phases)
    /// or the last pod finished (running phases).
    pub span: Duration,
    pub cpu_seconds: f64,
    pub peak_rss_kib: u64,
}

impl Phase {
    fn per_second(&self) -> f64 {
        let done = if self.to_finish.len() > 0 {
            self.finished
        } else {
            self.pods_seen
        };
        done as f64 / self.span.as_secs_f64().max(1e-9)
    }
}

pub struct History {
    pub runs: usize,
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
}

#[derive(Default)]
pub struct Report {
    pub phases: Vec<Phase>,
    /// Probes' time to pod from the create request, and from its answer.
    pub fairness_probe: Option<(Sample, Sample)>,
    pub history: Option<History>,
}

/// How long a phase's namespace may take to go before the next phase starts anyway.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(180);

pub struct Bench {
    client: Client,
    options: Options,
    controller: Controller,
    started: Instant,
    /// Distinguishes this invocation's namespaces from earlier ones.
    tag: String,
}

fn progress(started: Instant, message: &str) {
    eprintln!("[cicd-bench +{:6.1}s] {message}", started.elapsed().as_secs_f64());
}

impl Bench {
    pub async fn new(client: Client, options: Options) -> anyhow::Result<Self> {
        let controller = Controller::find()?;
        let tag = format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs()
        );
        Ok(Bench {
            client,
            options,
            controller,
            started: Instant::now(),
            tag,
        })
    }

    fn say(&self, message: &str) {
        progress(self.started, message);
    }

    pub async fn run_all(&self) -> anyhow::Result<Report> {
        let o = &self.options;
        let wanted = |which: Which| o.phases.contains(&which);
        let mut report = Report::default();
        if wanted(Which::Burst) && o.burst > 0 {
            for subject in [Subject::RawPods, Subject::ObjectAndPod, Subject::Runs] {
                report
                    .phases
                    .push(self.burst(subject, Placement::Unschedulable, o.burst).await?);
            }
        }
        if wanted(Which::Steady) && o.steady_rate > 0 {
            report.phases.push(self.steady().await?);
        }
        if wanted(Which::Running) && o.running > 0 {
            for subject in [Subject::RawPods, Subject::RunShapedPods, Subject::Runs] {
                report
                    .phases
                    .push(self.burst(subject, Placement::Runs, o.running).await?);
            }
        }
        if wanted(Which::Fairness) && o.fairness_burst > 0 && o.fairness_probes > 0 {
            report.fairness_probe = Some(self.fairness().await?);
        }
        if wanted(Which::History) && o.history > 0 {
            report.history = Some(self.history().await?);
        }
        Ok(report)
    }

    /// A fresh namespace with the one-step task in it, watched by a tracker
    /// (of runs if `runs`: they finish when the run says so, not the pod).
    async fn namespace(&self, phase: &str, runs: bool) -> anyhow::Result<(String, Tracker)> {
        let namespace = format!("bench-{phase}-{}", self.tag);
        objects::create_namespace(&self.client, &namespace).await?;
        objects::create_task(&self.client, &namespace, &self.options.image).await?;
        let tracker = if runs { Tracker::of_runs() } else { Tracker::default() };
        tracker.watch(&self.client, &namespace);
        // Let the watch's initial list finish before the clock starts.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok((namespace, tracker))
    }

    /// Deletes a phase's namespace and waits until it is gone, so its
    /// objects' deletion does not load the cluster during the next phase.
    async fn cleanup(&self, namespace: &str) {
        if self.options.keep {
            return;
        }
        if let Err(error) = objects::delete_namespace(&self.client, namespace).await {
            self.say(&format!("could not delete namespace {namespace}: {error}"));
            return;
        }
        let started = Instant::now();
        match objects::wait_gone(&self.client, namespace, CLEANUP_TIMEOUT).await {
            Ok(true) => self.say(&format!(
                "namespace {namespace} deleted in {:.1}s",
                started.elapsed().as_secs_f64()
            )),
            Ok(false) => self.say(&format!(
                "namespace {namespace} still terminating after {CLEANUP_TIMEOUT:?}; going on"
            )),
            Err(error) => self.say(&format!("could not watch namespace {namespace} go: {error}")),
        }
    }

    async fn create_one(
        client: &Client,
        (namespace, template): (&str, Option<&Pod>),
        subject: Subject,
        id: usize,
        placement: Placement,
        image: &str,
    ) -> anyhow::Result<()> {
        match subject {
            Subject::RawPods => objects::create_raw_pod(client, namespace, id, image, placement).await?,
            Subject::RunShapedPods => {
                let template = template.context("no run's pod to copy")?;
                Api::<Pod>::namespaced(client.clone(), namespace)
                    .create(&PostParams::default(), &objects::run_shaped_pod(template, id))
                    .await?;
            }
            Subject::ObjectAndPod => {
                objects::create_floor_task(client, namespace, id, image).await?;
                objects::create_raw_pod(client, namespace, id, image, placement).await?;
            }
            Subject::Runs => {
                let run = objects::task_run(id, placement, false)?;
                Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &objects::task_run_resource())
                    .create(&PostParams::default(), &run)
                    .await?;
            }
        }
        Ok(())
    }

    /// Creates `ids` as fast as `concurrency` allows, noting each start.
    async fn create_all(
        &self,
        (namespace, template): (&str, Option<&Pod>),
        tracker: &Tracker,
        subject: Subject,
        ids: std::ops::Range<usize>,
        placement: Placement,
    ) -> anyhow::Result<()> {
        let failures: Vec<anyhow::Error> = futures::stream::iter(ids)
            .map(|id| {
                tracker.created(id);
                Self::create_one(
                    &self.client,
                    (namespace, template),
                    subject,
                    id,
                    placement,
                    &self.options.image,
                )
            })
            .buffer_unordered(self.options.concurrency)
            .filter_map(|result| async move { result.err() })
            .collect()
            .await;
        match failures.into_iter().next() {
            Some(first) => Err(first.context("a create request failed")),
            None => Ok(()),
        }
    }

    /// Waits until `target` pods are seen (or finished), printing progress.
    async fn wait_for(&self, tracker: &Tracker, target: usize, finished: bool, what: &str) {
        let deadline = Instant::now() + self.options.phase_timeout;
        let mut last_report = Instant::now();
        loop {
            let (seen, done) = tracker.counts();
            let count = if finished { done } else { seen };
            if count >= target {
                return;
            }
            if Instant::now() >= deadline {
                self.say(&format!(
                    "{what}: gave up after {:?} at {count}/{target}",
                    self.options.phase_timeout
                ));
                return;
            }
            if last_report.elapsed() >= Duration::from_secs(5) {
                self.say(&format!("{what}: {seen}/{target} pods seen, {done} finished"));
                last_report = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn usage(&self) -> Usage {
        self.controller.usage().unwrap_or_default()
    }

    fn phase(&self, name: String, count: usize, tracker: &Tracker, before: Usage, finished: bool) -> Phase {
        let after = self.usage();
        let timings = tracker.timings();
        let (pods_seen, done) = tracker.counts();
        Phase {
            name,
            count,
            pods_seen,
            finished: done,
            to_pod: Sample::new(timings.to_pod),
            to_finish: Sample::new(if finished { timings.to_finish } else { Vec::new() }),
            span: if finished {
                timings.span_to_finish
            } else {
                timings.span_to_pod
            },
            cpu_seconds: after.cpu_seconds - before.cpu_seconds,
            peak_rss_kib: after.peak_rss_kib,
        }
    }

    async fn burst(&self, subject: Subject, placement: Placement, count: usize) -> anyhow::Result<Phase> {
        let name = format!(
            "{} {}",
            match subject {
                Subject::RawPods => "raw pods",
                Subject::ObjectAndPod => "floor: object + pod",
                Subject::RunShapedPods => "run-shaped pods",
                Subject::Runs => "runs",
            },
            match placement {
                Placement::Unschedulable => "(controller only)",
                Placement::Runs => "(pods run)",
            }
        );
        let slug = format!(
            "{}-{}",
            match subject {
                Subject::RawPods => "raw",
                Subject::ObjectAndPod => "floor",
                Subject::RunShapedPods => "shaped",
                Subject::Runs => "runs",
            },
            if placement == Placement::Runs {
                "running"
            } else {
                "pending"
            }
        );
        self.say(&format!("{name}: burst of {count}"));
        let (namespace, tracker) = self.namespace(&slug, subject == Subject::Runs).await?;
        let template = match subject {
            Subject::RunShapedPods => Some(self.run_pod_copied_to(&namespace).await?),
            _ => None,
        };
        let _ = self.controller.reset_peak();
        let before = self.usage();
        self.create_all((&namespace, template.as_ref()), &tracker, subject, 0..count, placement)
            .await?;
        let finished = placement == Placement::Runs;
        self.wait_for(&tracker, count, finished, &name).await;
        let phase = self.phase(name, count, &tracker, before, finished);
        self.say(&format!("{}: done in {:.1}s", phase.name, phase.span.as_secs_f64()));
        self.cleanup(&namespace).await;
        Ok(phase)
    }

    /// The pod the controller makes for one run of the one-step task (in a
    /// namespace of its own, deleted once copied), with the ConfigMaps it
    /// mounts copied into `namespace` for the copies to mount.
    async fn run_pod_copied_to(&self, namespace: &str) -> anyhow::Result<Pod> {
        self.say("run-shaped pods: copying the pod of one run");
        let (source, tracker) = self.namespace("template", true).await?;
        let run = objects::task_run(0, Placement::Runs, false)?;
        Api::<DynamicObject>::namespaced_with(self.client.clone(), &source, &objects::task_run_resource())
            .create(&PostParams::default(), &run)
            .await?;
        self.wait_for(&tracker, 1, false, "the run whose pod is copied").await;
        let pod = Api::<Pod>::namespaced(self.client.clone(), &source)
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .next()
            .with_context(|| format!("the run in {source} made no pod"))?;
        objects::copy_config_maps(&self.client, &pod, &source, namespace).await?;
        self.cleanup(&source).await;
        Ok(pod)
    }

    /// Runs at a steady rate, controller only: time to pod under load.
    async fn steady(&self) -> anyhow::Result<Phase> {
        let o = &self.options;
        let count = (o.steady_rate as u64 * o.steady_seconds) as usize;
        let name = format!(
            "runs at {}/s for {}s (controller only)",
            o.steady_rate, o.steady_seconds
        );
        self.say(&name);
        let (namespace, tracker) = self.namespace("steady", false).await?;
        let _ = self.controller.reset_peak();
        let before = self.usage();
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / o.steady_rate as f64));
        let namespace = Arc::new(namespace);
        let mut pending = Vec::with_capacity(count);
        for id in 0..count {
            ticks.tick().await;
            tracker.created(id);
            let (client, namespace, image) = (self.client.clone(), namespace.clone(), o.image.clone());
            pending.push(tokio::spawn(async move {
                Self::create_one(
                    &client,
                    (&namespace, None),
                    Subject::Runs,
                    id,
                    Placement::Unschedulable,
                    &image,
                )
                .await
            }));
        }
        for handle in pending {
            handle.await??;
        }
        self.wait_for(&tracker, count, false, &name).await;
        let phase = self.phase(name, count, &tracker, before, false);
        self.cleanup(&namespace).await;
        Ok(phase)
    }

    /// Another tenant's burst in namespace A; probes in namespace B.
    async fn fairness(&self) -> anyhow::Result<(Sample, Sample)> {
        let o = &self.options;
        self.say(&format!(
            "fair share: burst of {} runs in A, {} probes in B",
            o.fairness_burst, o.fairness_probes
        ));
        let (busy, busy_tracker) = self.namespace("tenant-a", false).await?;
        let (probe, probe_tracker) = self.namespace("tenant-b", false).await?;
        let burst = self.create_all(
            (&busy, None),
            &busy_tracker,
            Subject::Runs,
            0..o.fairness_burst,
            Placement::Unschedulable,
        );
        let probes = async {
            for id in 0..o.fairness_probes {
                tokio::time::sleep(Duration::from_millis(100)).await;
                probe_tracker.created(id);
                Self::create_one(
                    &self.client,
                    (&probe, None),
                    Subject::Runs,
                    id,
                    Placement::Unschedulable,
                    &o.image,
                )
                .await?;
                probe_tracker.answered(id);
            }
            anyhow::Ok(())
        };
        let (burst, probes) = tokio::join!(burst, probes);
        burst?;
        probes?;
        self.wait_for(&probe_tracker, o.fairness_probes, false, "probes in B")
            .await;
        self.wait_for(&busy_tracker, o.fairness_burst, false, "burst in A")
            .await;
        let timings = probe_tracker.timings();
        let sample = (Sample::new(timings.to_pod), Sample::new(timings.to_pod_after_answer));
        self.cleanup(&busy).await;
        self.cleanup(&probe).await;
        Ok(sample)
    }

    /// Piles up finished runs (cancelled before they start, so no pods) and
    /// reads the controller's memory once they are all done.
    async fn history(&self) -> anyhow::Result<History> {
        let count = self.options.history;
        self.say(&format!("history: {count} finished runs"));
        let (namespace, _tracker) = self.namespace("history", false).await?;
        let runs =
            Api::<DynamicObject>::namespaced_with(self.client.clone(), &namespace, &objects::task_run_resource());
        let _ = self.controller.reset_peak();
        let created: Vec<anyhow::Result<()>> = futures::stream::iter(0..count)
            .map(|id| {
                let runs = runs.clone();
                async move {
                    let run = objects::task_run(id, Placement::Unschedulable, true)?;
                    runs.create(&PostParams::default(), &run).await?;
                    Ok(())
                }
            })
            .buffer_unordered(self.options.concurrency)
            .collect()
            .await;
        created.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
        let deadline = Instant::now() + self.options.phase_timeout;
        loop {
            let done = count_finished(&runs).await?;
            self.say(&format!("history: {done}/{count} runs finished"));
            if done >= count || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        // Let anything the burst left queued settle before reading memory.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let usage = self.usage();
        self.cleanup(&namespace).await;
        Ok(History {
            runs: count,
            rss_kib: usage.rss_kib,
            peak_rss_kib: usage.peak_rss_kib,
        })
    }
}

/// Runs whose Succeeded condition is no longer Unknown.
async fn count_finished(runs: &Api<DynamicObject>) -> anyhow::Result<usize> {
    let mut done = 0;
    let mut params = ListParams::default().limit(500);
    loop {
        let page = runs.list(&params).await?;
        done += page.items.iter().filter(|run| run_is_finished(run)).count();
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(done),
        }
    }
}

fn ratio(numerator: f64, denominator: f64) -> String {
    if denominator > 0.0 {
        format!("{:.2}", numerator / denominator)
    } else {
        "n/a".to_string()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\n== cicd-bench results (one invocation, same cluster)")?;
        writeln!(
            f,
            "{:<44} {:>6} {:>9} {:>10} {:>10} {:>10} {:>10} {:>8} {:>9}",
            "phase", "count", "per s", "pod p50", "pod p99", "end p50", "end p99", "ctl cpu", "ctl peak"
        )?;
        for p in &self.phases {
            let incomplete = if p.pods_seen < p.count { " (incomplete)" } else { "" };
            writeln!(
                f,
                "{:<44} {:>6} {:>9.1} {:>10} {:>10} {:>10} {:>10} {:>7.1}s {:>6} MiB",
                format!("{}{incomplete}", p.name),
                p.count,
                p.per_second(),
                ms(p.to_pod.percentile(50.0)),
                ms(p.to_pod.percentile(99.0)),
                ms(p.to_finish.percentile(50.0)),
                ms(p.to_finish.percentile(99.0)),
                p.cpu_seconds,
                p.peak_rss_kib / 1024,
            )?;
        }
        self.fmt_ratios(f)?;
        if let Some((from_request, from_answer)) = &self.fairness_probe {
            writeln!(
                f,
                "fair share: time to pod of {} runs in namespace B during A's burst: p50 {}, p99 {} (goal p99 < 500 ms); \
                 from the create's answer: p50 {}, p99 {}",
                from_request.len(),
                ms(from_request.percentile(50.0)),
                ms(from_request.percentile(99.0)),
                ms(from_answer.percentile(50.0)),
                ms(from_answer.percentile(99.0))
            )?;
        }
        if let Some(h) = &self.history {
            writeln!(
                f,
                "history: controller RSS with {} more finished runs: {} MiB (peak {} MiB; goal < 64 MiB)",
                h.runs,
                h.rss_kib / 1024,
                h.peak_rss_kib / 1024
            )?;
        }
        Ok(())
    }
}

impl Report {
    fn find(&self, prefix: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name.starts_with(prefix))
    }

    fn fmt_ratios(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(raw), Some(runs)) = (self.find("raw pods (controller"), self.find("runs (controller")) {
            writeln!(
                f,
                "controller only: runs reach {} x the raw pod-creation rate (goal >= 0.90)",
                ratio(runs.per_second(), raw.per_second())
            )?;
            if let Some(floor) = self.find("floor: object + pod") {
                writeln!(
                    f,
                    "controller only: a client making each run's object and pod itself reaches {} x the raw rate \
                     (the most any controller can reach here); runs reach {} x that",
                    ratio(floor.per_second(), raw.per_second()),
                    ratio(runs.per_second(), floor.per_second())
                )?;
            }
        }
        if let (Some(raw), Some(runs)) = (self.find("raw pods (pods run"), self.find("runs (pods run")) {
            writeln!(
                f,
                "pods that run: runs take {} x the time of raw pods in total (goal <= 1.10)",
                ratio(runs.span.as_secs_f64(), raw.span.as_secs_f64())
            )?;
            if let Some(shaped) = self.find("run-shaped pods (pods run") {
                writeln!(
                    f,
                    "pods that run: raw pods shaped as a run's take {} x the time of raw pods (the pod's shape, \
                     no controller); runs take {} x the time of those",
                    ratio(shaped.span.as_secs_f64(), raw.span.as_secs_f64()),
                    ratio(runs.span.as_secs_f64(), shaped.span.as_secs_f64())
                )?;
            }
        }
        Ok(())
    }
}
