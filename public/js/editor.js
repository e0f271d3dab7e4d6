// The Monaco bridge. pairpad's Rust code (src/interop/editor.rs) imports this
// module through wasm-bindgen; nothing else calls Monaco. It loads Monaco's AMD
// build from pairpad's own assets, creates one editor, reports the user's edits
// and selections, applies remote changes without echoing them, and draws other
// participants' cursors. Offsets are UTF-16 code units (JavaScript's and yrs's).

const MONACO_VS = '/vendor/monaco-editor-0.52.2/min/vs';

let monacoPromise = null;

/** Loads Monaco once (AMD loader, then editor.main). */
function loadMonaco() {
  if (monacoPromise) return monacoPromise;
  monacoPromise = new Promise((resolve, reject) => {
    // Workers come from our own origin: allowed by worker-src 'self' and COEP.
    window.MonacoEnvironment = {
      getWorkerUrl: () => `${MONACO_VS}/base/worker/workerMain.js`,
    };
    const script = document.createElement('script');
    script.src = `${MONACO_VS}/loader.js`;
    script.onload = () => {
      window.require.config({ paths: { vs: MONACO_VS } });
      window.require(['vs/editor/editor.main'], () => {
        registerPythonCompletions(window.monaco);
        resolve(window.monaco);
      }, (err) => reject(new Error(`Monaco failed to load: ${err}`)));
    };
    script.onerror = () => reject(new Error('Monaco loader failed to load'));
    document.head.appendChild(script);
  });
  return monacoPromise;
}

const PYTHON_KEYWORDS = ('False None True and as assert async await break class continue def del elif else ' +
  'except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield ' +
  'match case').split(' ');
const PYTHON_BUILTINS = ('abs all any ascii bin bool breakpoint bytearray bytes callable chr classmethod compile ' +
  'complex delattr dict dir divmod enumerate eval exec filter float format frozenset getattr globals hasattr hash ' +
  'help hex id input int isinstance issubclass iter len list locals map max memoryview min next object oct open ' +
  'ord pow print property range repr reversed round set setattr slice sorted staticmethod str sum super tuple ' +
  'type vars zip Exception ValueError TypeError KeyError IndexError StopIteration RuntimeError ZeroDivisionError ' +
  'NotImplementedError AttributeError EOFError').split(' ');

/** Python completion: keywords, builtins and the words already in the document. */
function registerPythonCompletions(monaco) {
  monaco.languages.registerCompletionItemProvider('python', {
    provideCompletionItems(model, position) {
      const word = model.getWordUntilPosition(position);
      const range = new monaco.Range(position.lineNumber, word.startColumn, position.lineNumber, word.endColumn);
      const seen = new Set();
      const items = [];
      const add = (label, kind) => {
        if (seen.has(label) || label === word.word) return;
        seen.add(label);
        items.push({ label, kind, insertText: label, range });
      };
      PYTHON_KEYWORDS.forEach((k) => add(k, monaco.languages.CompletionItemKind.Keyword));
      PYTHON_BUILTINS.forEach((b) => add(b, monaco.languages.CompletionItemKind.Function));
      const words = model.getValue().match(/[A-Za-z_][A-Za-z0-9_]{2,}/g) || [];
      words.forEach((w) => add(w, monaco.languages.CompletionItemKind.Text));
      return { suggestions: items };
    },
  });
}

/**
 * Creates the editor in `container` holding `text`.
 * Callbacks: onChange(json of [{offset,length,text}]), onSelection(anchor, head),
 * onUndo(), onRedo(), onRun().
 */
export async function createEditor(container, text, language, theme, onChange, onSelection, onUndo, onRedo, onRun) {
  const monaco = await loadMonaco();
  return new EditorHandle(monaco, container, text, language, theme, onChange, onSelection, onUndo, onRedo, onRun);
}

/** Starts loading Monaco without creating an editor (warms the cache). */
export function preloadMonaco() {
  loadMonaco().catch(() => {});
}

/**
 * How long a participant's name label stays after they type or move their
 * caret (or after the pointer leaves it): shown all the time, labels would
 * cover the line above every caret.
 */
const LABEL_SHOWN_MS = 2500;

class EditorHandle {
  constructor(monaco, container, text, language, theme, onChange, onSelection, onUndo, onRedo, onRun) {
    this.monaco = monaco;
    this.muted = false;
    this.peerDecorations = [];
    this.peerWidgets = new Map();
    const model = monaco.editor.createModel(text, language);
    model.setEOL(monaco.editor.EndOfLineSequence.LF);
    this.model = model;
    this.editor = monaco.editor.create(container, {
      model,
      theme: theme === 'dark' ? 'vs-dark' : 'vs',
      automaticLayout: true,
      minimap: { enabled: false },
      fontSize: 14,
      tabSize: 4,
      scrollBeyondLastLine: false,
      renderWhitespace: 'selection',
      // The suggestion list opens once the typist pauses, not under every
      // keystroke (Monaco's default waits 10 ms). Opening and refiltering it on
      // each key is the largest part of a keystroke's work that pairpad can
      // turn down, and a teammate's edits wait behind it: with this page
      // typing 30 characters a second against a peer doing the same, the
      // peer's keystrokes reached this editor in 74-94 ms at p95 with the
      // default and in about 30 ms with this (end2end/measure/editor-latency.mjs,
      // the "peer" run; issue 16). Ctrl+Space still opens the list at once.
      quickSuggestionsDelay: 300,
    });
    model.onDidChangeContent((event) => {
      if (this.muted) return;
      const changes = event.changes.map((c) => ({ offset: c.rangeOffset, length: c.rangeLength, text: c.text }));
      onChange(JSON.stringify(changes));
    });
    // A name label shows while the pointer rests on (or next to) that caret.
    this.editor.onMouseMove((event) => {
      const { posx, posy, editorPos } = event.event;
      this.hoverLabels({ x: posx - editorPos.x, y: posy - editorPos.y });
    });
    this.editor.onMouseLeave(() => this.hoverLabels(null));
    this.editor.onDidChangeCursorSelection((event) => {
      if (this.muted) return;
      const sel = event.selection;
      onSelection(model.getOffsetAt(sel.getSelectionStart()), model.getOffsetAt(sel.getPosition()));
    });
    const { KeyMod, KeyCode } = monaco;
    // Undo and redo go to the shared document's undo manager: only your own edits.
    this.editor.addCommand(KeyMod.CtrlCmd | KeyCode.KeyZ, () => onUndo());
    this.editor.addCommand(KeyMod.CtrlCmd | KeyMod.Shift | KeyCode.KeyZ, () => onRedo());
    this.editor.addCommand(KeyMod.CtrlCmd | KeyCode.KeyY, () => onRedo());
    this.editor.addCommand(KeyMod.CtrlCmd | KeyCode.Enter, () => onRun());
  }

  /** Offsets of every selection as a flat [anchor, head, anchor, head, ...]. */
  selections() {
    const out = [];
    for (const sel of this.editor.getSelections() || []) {
      out.push(this.model.getOffsetAt(sel.getSelectionStart()), this.model.getOffsetAt(sel.getPosition()));
    }
    return new Uint32Array(out);
  }

  /**
   * Applies remote deltas (json: array of arrays of {r}|{i}|{d}) and then puts the
   * local selections at `selections` (flat anchor/head offsets, already moved
   * through the deltas by the caller). Returns the model's new length.
   */
  applyRemote(deltasJson, selections) {
    const monaco = this.monaco;
    const model = this.model;
    this.muted = true;
    try {
      for (const delta of JSON.parse(deltasJson)) {
        let index = 0;
        for (const op of delta) {
          if (op.r !== undefined) {
            index += op.r;
          } else if (op.d !== undefined) {
            const start = model.getPositionAt(index);
            const end = model.getPositionAt(index + op.d);
            model.applyEdits([{ range: monaco.Range.fromPositions(start, end), text: '' }]);
          } else if (op.i !== undefined) {
            const at = model.getPositionAt(index);
            model.applyEdits([{ range: monaco.Range.fromPositions(at, at), text: op.i }]);
            index += op.i.length;
          }
        }
      }
      this.setSelections(selections);
    } finally {
      this.muted = false;
    }
    return model.getValueLength();
  }

  /** Replaces the whole text (resync), keeping the caret where it was if possible. */
  setValue(text) {
    const selections = this.selections();
    this.muted = true;
    try {
      this.model.setValue(text);
      this.setSelections(selections);
    } finally {
      this.muted = false;
    }
  }

  setSelections(flat) {
    if (!flat || flat.length < 2) return;
    const sels = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const anchor = this.model.getPositionAt(flat[i]);
      const head = this.model.getPositionAt(flat[i + 1]);
      sels.push(new this.monaco.Selection(anchor.lineNumber, anchor.column, head.lineNumber, head.column));
    }
    this.editor.setSelections(sels);
  }

  /**
   * Marks text (flat [start, end, ...] UTF-16 offsets) with the class
   * `playback-highlight`, replacing earlier marks; empty clears them.
   */
  setHighlights(flat) {
    const monaco = this.monaco;
    const decorations = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const range = monaco.Range.fromPositions(this.model.getPositionAt(flat[i]), this.model.getPositionAt(flat[i + 1]));
      decorations.push({ range, options: { inlineClassName: 'playback-highlight' } });
    }
    this.highlights = this.editor.deltaDecorations(this.highlights || [], decorations);
  }

  /** Read-only (the interview has ended) or editable. */
  setReadOnly(readOnly) {
    this.editor.updateOptions({ readOnly });
  }

  getValue() {
    return this.model.getValue();
  }

  length() {
    return this.model.getValueLength();
  }

  setLanguage(language) {
    this.monaco.editor.setModelLanguage(this.model, language);
  }

  setTheme(theme) {
    this.monaco.editor.setTheme(theme === 'dark' ? 'vs-dark' : 'vs');
  }

  /**
   * Draws others' carets and selections: json [{id, name, color, anchor, head, key}].
   *
   * Called on every presence change and every edit (offsets shift), so up to a
   * hundred times a second while two people type: the latest list is drawn once
   * per animation frame, and only what changed touches the DOM (each write
   * makes the browser lay the editor out again).
   */
  setPeers(peersJson) {
    this.pendingPeers = peersJson;
    if (this.peersFrame) return;
    this.peersFrame = requestAnimationFrame(() => {
      this.peersFrame = 0;
      const json = this.pendingPeers;
      if (json !== this.drawnPeers && !this.disposed) {
        this.drawnPeers = json;
        this.drawPeers(JSON.parse(json));
      }
    });
  }

  drawPeers(peers) {
    const monaco = this.monaco;
    const model = this.model;
    const decorations = [];
    const live = new Set();
    for (const peer of peers) {
      const anchor = model.getPositionAt(peer.anchor);
      const head = model.getPositionAt(peer.head);
      const color = Number(peer.color) % 12;
      if (peer.anchor !== peer.head) {
        decorations.push({
          range: monaco.Range.fromPositions(anchor, head),
          options: { className: `pp-peer-selection pp-peer-${color}` },
        });
      }
      decorations.push({
        range: monaco.Range.fromPositions(head, head),
        options: { beforeContentClassName: `pp-peer-caret pp-peer-${color}` },
      });
      const id = `pp-peer-${peer.id}`;
      live.add(id);
      let widget = this.peerWidgets.get(id);
      if (!widget) {
        const node = document.createElement('div');
        node.className = 'pp-peer-label';
        node.dataset.testid = 'remote-cursor';
        widget = {
          node,
          position: head,
          getId: () => id,
          getDomNode: () => node,
          getPosition: () => ({
            position: widget.position,
            preference: [monaco.editor.ContentWidgetPositionPreference.ABOVE,
              monaco.editor.ContentWidgetPositionPreference.BELOW],
          }),
        };
        this.peerWidgets.set(id, widget);
        this.editor.addContentWidget(widget);
      }
      // textContent, never HTML: names come from other participants.
      if (widget.node.textContent !== peer.name) widget.node.textContent = peer.name;
      const className = `pp-peer-label pp-peer-${color}`;
      if (widget.node.className !== className) widget.node.className = className;
      const moved = !head.equals(widget.position);
      widget.position = head;
      // Their own move or keystroke (not someone else's edit shifting their
      // offsets, nor a presence renewal) brings the label back.
      if (widget.key !== peer.key) {
        widget.key = peer.key;
        this.showLabel(widget, LABEL_SHOWN_MS);
      }
      if (moved) this.editor.layoutContentWidget(widget);
    }
    for (const [id, widget] of this.peerWidgets) {
      if (!live.has(id)) {
        clearTimeout(widget.fadeTimer);
        this.editor.removeContentWidget(widget);
        this.peerWidgets.delete(id);
      }
    }
    this.peerDecorations = this.editor.deltaDecorations(this.peerDecorations, decorations);
  }

  /** Shows a name label, fading it `ms` later (never, while hovered). */
  showLabel(widget, ms) {
    if (widget.node.dataset.state !== 'shown') widget.node.dataset.state = 'shown';
    clearTimeout(widget.fadeTimer);
    if (widget.hovered) return;
    widget.fadeTimer = setTimeout(() => {
      widget.node.dataset.state = 'faded';
    }, ms);
  }

  /**
   * The pointer is at `pointer` ({x, y} in pixels from the editor's top left;
   * null: it left the editor). A label shows while the pointer is on its caret
   * (a few pixels either side), not anywhere on its line.
   */
  hoverLabels(pointer) {
    for (const widget of this.peerWidgets.values()) {
      const caret = pointer && this.editor.getScrolledVisiblePosition(widget.position);
      const near = Boolean(caret)
        && Math.abs(pointer.x - caret.left) <= 6
        && pointer.y >= caret.top && pointer.y <= caret.top + caret.height;
      if (near && !widget.hovered) {
        widget.hovered = true;
        this.showLabel(widget, 0);
      } else if (!near && widget.hovered) {
        widget.hovered = false;
        this.showLabel(widget, LABEL_SHOWN_MS);
      }
    }
  }

  dispose() {
    this.disposed = true;
    cancelAnimationFrame(this.peersFrame);
    for (const widget of this.peerWidgets.values()) {
      clearTimeout(widget.fadeTimer);
      this.editor.removeContentWidget(widget);
    }
    this.peerWidgets.clear();
    this.editor.dispose();
    this.model.dispose();
  }
}
