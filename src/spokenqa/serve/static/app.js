// spokenqa page: transcript or recording in, question in, answer highlighted in the transcript;
// and, when the server has an archive (serve --index), one question over all of it.
// Talks only to this server (/health, /v1/archive, /v1/transcribe, /v1/answer, /v1/audio,
// /v1/documents/{id}/audio); DOM is built with textContent only.
"use strict";

(function () {
  const TOP_K = 5;
  const $ = (id) => document.getElementById(id);
  const el = {
    context: $("context"), file: $("audio-file"), transcribe: $("transcribe"),
    audioStatus: $("audio-status"), player: $("player"), audio: $("audio"),
    form: $("ask-form"), question: $("question"), ask: $("ask"), error: $("error"),
    results: $("results"), summary: $("answer-summary"), play: $("play-answer"),
    highlight: $("highlight"), nbest: $("nbest"),
  };
  // The transcript from the last upload; used (with its times) while the text area still holds it.
  let recording = null; // {id, text, audioUrl, duration}
  let shown = null; // {context, answers, timed}
  let stopAt = null;

  function showError(message) {
    el.error.textContent = message || "";
  }

  async function callJson(url, options) {
    let response;
    try {
      response = await fetch(url, options);
    } catch (e) {
      throw new Error("the server cannot be reached (" + e.message + ")");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (!response.ok) {
      const why = data && data.error ? data.error : response.status + " " + response.statusText;
      throw new Error(why);
    }
    return data;
  }

  function busy(on, ...buttons) {
    for (const b of buttons) b.disabled = on;
    el.results.setAttribute("aria-busy", on ? "true" : "false");
  }

  async function transcribe() {
    showError("");
    const file = el.file.files && el.file.files[0];
    if (!file) {
      showError("Choose a recording first.");
      el.file.focus();
      return;
    }
    const form = new FormData();
    form.append("file", file, file.name);
    el.audioStatus.textContent = "Transcribing " + file.name + "…";
    busy(true, el.transcribe, el.ask);
    try {
      const t = await callJson("/v1/transcribe", { method: "POST", body: form });
      recording = { id: t.transcript_id, text: t.text, audioUrl: t.audio_url, duration: t.duration };
      el.context.value = t.text;
      el.audio.src = t.audio_url;
      el.player.hidden = false;
      el.audioStatus.textContent = "Transcribed " + t.duration.toFixed(1) + " s of audio: " +
        t.words.length + " words. Ask a question about it.";
      el.question.focus();
    } catch (e) {
      el.audioStatus.textContent = "";
      showError("Transcription failed: " + e.message);
    } finally {
      busy(false, el.transcribe, el.ask);
    }
  }

  async function ask(event) {
    event.preventDefault();
    showError("");
    const question = el.question.value.trim();
    const context = el.context.value;
    if (!context.trim()) {
      showError("Paste a transcript or transcribe a recording first.");
      el.context.focus();
      return;
    }
    if (!question) {
      showError("Type a question.");
      el.question.focus();
      return;
    }
    const timed = recording !== null && context === recording.text;
    const body = { questions: [question], top_k: TOP_K };
    if (timed) body.transcript_id = recording.id;
    else body.context = context;
    busy(true, el.ask, el.transcribe);
    try {
      const data = await callJson("/v1/answer", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      shown = { context: context, chars: Array.from(context), answers: data.results[0].answers, timed: timed,
                question: data.results[0].question, ms: data.elapsed_ms };
      el.results.hidden = false;
      renderList();
      select(0);
    } catch (e) {
      showError("No answer: " + e.message);
    } finally {
      busy(false, el.ask, el.transcribe);
    }
  }

  function fmtScore(score) {
    return score.toFixed(3);
  }

  function fmtTime(s) {
    return s.toFixed(2) + " s";
  }

  function renderList() {
    el.nbest.replaceChildren();
    shown.answers.forEach((a, i) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "nb";
      b.textContent = a.text || "(empty)";
      b.setAttribute("aria-pressed", "false");
      b.setAttribute("aria-label", "show answer " + (i + 1) + ": " + a.text + ", score " + fmtScore(a.score));
      b.addEventListener("click", () => select(i));
      const s = document.createElement("span");
      s.className = "score";
      s.textContent = " score " + fmtScore(a.score) +
        (a.start_s !== null && a.start_s !== undefined ? " · " + fmtTime(a.start_s) : "");
      li.append(b, s);
      el.nbest.append(li);
    });
  }

  function select(i) {
    const answers = shown.answers;
    el.highlight.replaceChildren();
    if (!answers.length) {
      el.summary.textContent = "No answer found for “" + shown.question + "”.";
      el.highlight.textContent = shown.context;
      el.play.hidden = true;
      return;
    }
    const a = answers[i];
    // The server's offsets count code points; JS strings count UTF-16 units.
    const chars = shown.chars;
    const mark = document.createElement("mark");
    mark.textContent = chars.slice(a.start, a.end).join("");
    el.highlight.append(chars.slice(0, a.start).join(""), mark, chars.slice(a.end).join(""));
    el.nbest.querySelectorAll("button.nb").forEach((b, j) => b.setAttribute("aria-pressed", j === i ? "true" : "false"));
    let summary = (i === 0 ? "Answer: " : "Answer " + (i + 1) + ": ") + "“" + a.text + "”, score " + fmtScore(a.score);
    const timed = shown.timed && a.start_s !== null && a.start_s !== undefined;
    if (timed) summary += ", at " + fmtTime(a.start_s) + " to " + fmtTime(a.end_s);
    el.summary.textContent = summary + " (" + Math.round(shown.ms) + " ms)";
    el.play.hidden = !timed;
    el.play.dataset.start = timed ? String(a.start_s) : "";
    el.play.dataset.end = timed ? String(a.end_s) : "";
    mark.scrollIntoView({ block: "nearest" });
  }

  function playAnswer() {
    const start = parseFloat(el.play.dataset.start);
    const end = parseFloat(el.play.dataset.end);
    if (!Number.isFinite(start)) return;
    stopAt = Number.isFinite(end) && end > start ? end : null;
    el.audio.currentTime = start;
    const playing = el.audio.play();
    if (playing && playing.catch) {
      playing.catch((e) => showError("The browser would not play the audio: " + e.message));
    }
  }

  // --- Archive mode: shown when the server was started with --index (GET /health names it).
  // One question over the whole archive; each answer with its document, time, probability, a
  // play button for a recording on the server, and its passage with the answer marked.
  const ARCHIVE_TOP_K = 3;
  const arc = {
    section: $("archive"), about: $("archive-about"), form: $("archive-form"),
    question: $("archive-question"), ask: $("archive-ask"), error: $("archive-error"),
    results: $("archive-results"), summary: $("archive-summary"), answers: $("archive-answers"), hint: $("archive-hint"),
    player: $("archive-player"), now: $("archive-now"), audio: $("archive-audio"),
  };

  function clock(seconds) { // 65.4 -> "01:05"; from an hour on, "1:01:05"
    const t = Math.max(0, Math.floor(seconds));
    const pad = (n) => String(n).padStart(2, "0");
    const h = Math.floor(t / 3600);
    const ms = pad(Math.floor((t % 3600) / 60)) + ":" + pad(t % 60);
    return h ? h + ":" + ms : ms;
  }

  function percent(p) {
    return Math.round(p * 100) + "%";
  }

  function duration(hours) {
    const s = hours * 3600;
    if (s < 60) return Math.round(s) + " s";
    if (s < 3600) return Math.round(s / 60) + " min";
    return hours.toFixed(1) + " h";
  }

  async function startArchive() {
    let health;
    try {
      health = await callJson("/health");
    } catch (e) {
      return; // the transcript mode still works; its own requests will say what is wrong
    }
    if (!health.archive) return;
    arc.section.hidden = false;
    try {
      const a = await callJson("/v1/archive");
      arc.about.textContent = "One question over " + a.documents + (a.documents === 1 ? " document" : " documents") +
        " (" + a.passages + (a.passages === 1 ? " passage" : " passages") + (a.audio_hours > 0 ? ", " + duration(a.audio_hours) + " of audio" : "") + ").";
      arc.hint.textContent = a.calibration
        ? "The percentage is the probability that the answer is right, calibrated on held-out questions; below " +
          percent(a.threshold) + " the archive is taken not to hold the answer."
        : "This reader has no calibration: the percentage is its score, not a calibrated probability; below " +
          percent(a.threshold) + " the archive is taken not to hold the answer.";
    } catch (e) {
      arc.about.textContent = "";
    }
  }

  function span(className, text) {
    const s = document.createElement("span");
    s.className = className;
    s.textContent = text;
    return s;
  }

  function answerItem(a) {
    const li = document.createElement("li");
    li.className = "answer";
    const where = document.createElement("p");
    where.className = "where";
    const name = document.createElement("strong");
    name.className = "doc";
    name.textContent = a.document.name;
    where.append(name);
    if (a.document.title && !a.document.name.startsWith(a.document.title + ".")) where.append(" · " + a.document.title);
    const timed = a.start_s !== null && a.start_s !== undefined;
    if (timed) where.append(" · at ", span("time", clock(a.start_s)));
    where.append(" · ", span("prob", percent(a.probability) + " likely right"));
    li.append(where);
    if (timed && a.document.audio_url) {
      const play = document.createElement("button");
      play.type = "button";
      play.className = "play";
      play.textContent = "play from " + clock(a.start_s);
      play.setAttribute("aria-label", "play from " + clock(a.start_s) + " in " + a.document.name);
      play.dataset.start = String(a.start_s);
      play.addEventListener("click", () => playFrom(a.document.audio_url, a.start_s, a.document.name));
      li.append(play);
    }
    // The server's offsets count code points; JS strings count UTF-16 units.
    const chars = Array.from(a.passage.text);
    const mark = document.createElement("mark");
    mark.textContent = chars.slice(a.start, a.end).join("");
    const passage = document.createElement("p");
    passage.className = "passage";
    passage.append(chars.slice(0, a.start).join(""), mark, chars.slice(a.end).join(""));
    li.append(passage);
    return li;
  }

  function showArchive(result, ms) {
    arc.results.hidden = false;
    arc.answers.replaceChildren();
    if (result.abstained || !result.answers.length) {
      arc.summary.className = "summary absent";
      arc.summary.textContent = "Not in this archive: no answer to “" + result.question +
        "” is likely enough to be right (" + percent(result.threshold) + " needed).";
      return;
    }
    const best = result.answers[0];
    const at = best.start_s !== null && best.start_s !== undefined ? " at " + clock(best.start_s) : "";
    arc.summary.className = "summary";
    arc.summary.textContent = "Answer: “" + best.text + "” in " + best.document.name + at + " (" +
      percent(best.probability) + " likely right; " + Math.round(ms) + " ms)";
    for (const a of result.answers) arc.answers.append(answerItem(a));
  }

  async function askArchive(event) {
    event.preventDefault();
    arc.error.textContent = "";
    const question = arc.question.value.trim();
    if (!question) {
      arc.error.textContent = "Type a question.";
      arc.question.focus();
      return;
    }
    arc.ask.disabled = true;
    arc.results.setAttribute("aria-busy", "true");
    try {
      const data = await callJson("/v1/answer", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ questions: [question], top_k: ARCHIVE_TOP_K }),
      });
      showArchive(data.results[0], data.elapsed_ms);
    } catch (e) {
      arc.error.textContent = "No answer: " + e.message;
    } finally {
      arc.ask.disabled = false;
      arc.results.setAttribute("aria-busy", "false");
    }
  }

  function playFrom(url, start, name) {
    arc.player.hidden = false;
    arc.now.textContent = "Playing " + name + " from " + clock(start) + ".";
    const go = () => {
      arc.audio.currentTime = start;
      const playing = arc.audio.play();
      if (playing && playing.catch) {
        playing.catch((e) => { arc.error.textContent = "The browser would not play the audio: " + e.message; });
      }
    };
    if (arc.audio.getAttribute("src") === url && arc.audio.readyState >= 1) {
      go();
      return;
    }
    arc.audio.addEventListener("loadedmetadata", go, { once: true });
    arc.audio.src = url;
  }

  arc.form.addEventListener("submit", askArchive);
  arc.audio.addEventListener("error", () => {
    if (arc.audio.getAttribute("src")) arc.error.textContent = "The recording cannot be played (" + arc.audio.getAttribute("src") + ").";
  });
  startArchive();

  el.audio.addEventListener("timeupdate", () => {
    if (stopAt !== null && el.audio.currentTime >= stopAt) {
      stopAt = null;
      el.audio.pause();
    }
  });
  el.audio.addEventListener("pause", () => { stopAt = null; });
  el.transcribe.addEventListener("click", transcribe);
  el.form.addEventListener("submit", ask);
  el.play.addEventListener("click", playAnswer);
  el.context.addEventListener("input", () => {
    if (recording && el.context.value !== recording.text) {
      el.audioStatus.textContent = "The text was edited: answers will have no audio times.";
    }
  });
})();
