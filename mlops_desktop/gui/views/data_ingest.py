"""The ingest dialog: pick files, preview them, edit a contract, ingest with progress and cancel, see the rejects."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.views.base import AppContext
from mlops_desktop.gui.views.data_panels import make_table, muted
from mlops_desktop.gui.views.data_table import RowsModel

FORMATS = ["auto", "csv", "tsv", "ndjson", "json", "parquet", "sqlite", "excel"]


def _options(fmt: str, delimiter: str, encoding: str, header: bool, table: str, sheet: str,
             null_words: tuple[str, ...] = ()) -> Any:
    from mlops_desktop.data.csvcheck import CsvOptions
    from mlops_desktop.data.sources import SourceOptions

    sep = {"\\t": "\t", "tab": "\t"}.get(delimiter, delimiter) or ","
    return SourceOptions(format=None if fmt == "auto" else fmt,
                         csv=CsvOptions(separator=sep, encoding=encoding or "utf-8", has_header=header,
                                        null_values=null_words),
                         table=table or None, sheet=sheet or None)


def parse_null_words(text: str) -> tuple[str, ...]:
    """'n/a, -, NULL' -> ('n/a', '-', 'NULL'): exact spellings, as the reader matches them."""
    return tuple(dict.fromkeys(w.strip() for w in text.split(",") if w.strip()))


def _preview(paths: list[str], options: Any, *, progress: Any) -> Any:
    from mlops_desktop.data.preview import draft_toml, preview

    pv = preview(paths, options, rows=50)
    return pv, draft_toml(pv)


def _ingest(ws: Any, paths: list[str], dataset: str, options: Any, contract_text: str | None, mode: str,
            partition_by: list[str] | None = None, *, progress: Any) -> Any:
    import tomllib

    from mlops_desktop.data.contract import contract_from_dict
    from mlops_desktop.data.ingest import ingest
    from mlops_desktop.errors import UsageError

    contract = None
    if contract_text and contract_text.strip():
        try:
            raw = tomllib.loads(contract_text)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"the contract is not valid TOML: {exc}") from None
        contract = contract_from_dict(raw.get("contract", raw), "the contract editor")
    return ingest(ws, paths, dataset, options=options, contract=contract, mode=mode, progress=progress,
                  partition_by=partition_by)


class IngestDialog(QDialog):
    """Everything an ingestion needs in one place; the work runs in the task runner and can be cancelled."""

    ingested = Signal(object)  # IngestResult

    def __init__(self, ctx: AppContext, parent: QWidget | None = None, dataset: str = "") -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setWindowTitle("Ingest data")
        self.resize(980, 720)
        self.task: Any = None
        self.result: Any = None
        self._before_id: int | None = None
        self._dataset_name = ""
        self._suggested = ""
        self._draft = ""
        self.paths = QLineEdit()
        self.paths.setPlaceholderText("files, globs (data/*.csv) or a folder; separate several with ;")
        self.paths.editingFinished.connect(lambda: self._suggest_name(self.path_list()))
        self.paths.returnPressed.connect(lambda: self.load_preview())
        browse = QPushButton("Browse…")
        browse.clicked.connect(lambda: self._browse())
        self.dataset = QLineEdit(dataset)
        self.dataset.setPlaceholderText("dataset name (letters, digits, _)")
        self.format = QComboBox()
        self.format.addItems(FORMATS)
        self.mode = QComboBox()
        self.mode.addItems(["replace", "append"])
        self.delimiter = QLineEdit(",")
        self.delimiter.setMaximumWidth(50)
        self.encoding = QLineEdit("utf-8")
        self.encoding.setMaximumWidth(110)
        self.header = QCheckBox("first line is a header")
        self.header.setChecked(True)
        self.table_name = QLineEdit()
        self.table_name.setPlaceholderText("SQLite table")
        self.sheet = QLineEdit()
        self.sheet.setPlaceholderText("Excel sheet (default: first)")
        self.null_words = QLineEdit()
        self.null_words.setPlaceholderText("n/a, -")
        self.null_words.setToolTip("values that mean 'no value' in the file (exact spelling, comma separated); "
                                   "the preview proposes the ones it finds in number columns")
        self.null_words.textEdited.connect(lambda _t: setattr(self, "_null_words_edited", True))
        self._null_words_edited = False
        self.partition = QLineEdit()
        self.partition.setPlaceholderText("partition by (optional): region, day")
        self.partition.setToolTip("one folder per value of these columns; an append keeps the base's partitioning")
        preview_button = QPushButton("Preview")
        preview_button.clicked.connect(lambda: self.load_preview())
        self.use_contract = QCheckBox("check this contract (bad rows go to the rejects, with file, line and reason)")
        self.use_contract.setChecked(True)
        self.contract = QPlainTextEdit()
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.contract.setFont(font)
        self.contract.setPlaceholderText('[columns.id]\ntype = "int64"\nnullable = false\nunique = true\n\n'
                                         '[columns.price]\ntype = "float64"\nmin = 0\n\nrows = ["price < 1000"]')
        self.preview_model = RowsModel(self)
        self.preview_view = make_table(self.preview_model)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.hide()
        self.status = muted()
        self.ingest_button = QPushButton("Ingest")
        self.ingest_button.setDefault(True)
        self.ingest_button.clicked.connect(lambda: self.start())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(lambda: self.cancel())
        self.rejects_button = QPushButton("Show rejects")
        self.rejects_button.hide()
        self.rejects_button.clicked.connect(lambda: self._show_rejects())

        form = QFormLayout()
        files_row = QHBoxLayout()
        files_row.addWidget(self.paths, 1)
        files_row.addWidget(browse)
        form.addRow("Files", files_row)
        form.addRow("Dataset", self.dataset)
        opts = QHBoxLayout()
        for label, widget in (("format", self.format), ("mode", self.mode), ("delimiter", self.delimiter),
                              ("encoding", self.encoding)):
            opts.addWidget(QLabel(label))
            opts.addWidget(widget)
        opts.addWidget(self.header)
        opts.addStretch(1)
        form.addRow("Options", opts)
        extra = QHBoxLayout()
        extra.addWidget(self.table_name)
        extra.addWidget(self.sheet)
        extra.addWidget(QLabel("null words"))
        extra.addWidget(self.null_words)
        extra.addWidget(self.partition)
        extra.addWidget(preview_button)
        form.addRow("", extra)
        contract_box = QWidget()
        cl = QVBoxLayout(contract_box)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.addWidget(self.use_contract)
        cl.addWidget(self.contract, 1)
        split = QSplitter()
        split.addWidget(self.preview_view)
        split.addWidget(contract_box)
        split.setSizes([600, 360])
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.rejects_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.ingest_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(split, 1)
        layout.addWidget(self.progress)
        layout.addLayout(buttons)

    # -- inputs ------------------------------------------------------------------------------------------------
    def _browse(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Files to ingest", "",
                                                "Data (*.csv *.tsv *.txt *.ndjson *.jsonl *.json *.parquet *.sqlite "
                                                "*.db *.xlsx *.xls *.ods);;All files (*)")
        if files:
            self.set_paths(files)

    def set_paths(self, paths: list[str]) -> None:
        self.paths.setText(";".join(paths))
        self.load_preview()

    def _suggest_name(self, paths: list[str]) -> None:
        """Pre-fill the dataset name from the file name, unless the user typed one."""
        from mlops_desktop.data.preview import suggest_dataset_name

        if paths and (not self.dataset.text().strip() or self.dataset.text() == self._suggested):
            self._suggested = suggest_dataset_name(paths)
            self.dataset.setText(self._suggested)

    def partition_columns(self) -> list[str] | None:
        """The partition columns typed in; None when empty (an append then keeps the base's partitioning)."""
        cols = [c.strip() for c in self.partition.text().split(",") if c.strip()]
        return cols or None

    def path_list(self) -> list[str]:
        return [p.strip() for p in self.paths.text().split(";") if p.strip()]

    def options(self) -> Any:
        return _options(self.format.currentText(), self.delimiter.text(), self.encoding.text().strip(),
                        self.header.isChecked(), self.table_name.text().strip(), self.sheet.text().strip(),
                        parse_null_words(self.null_words.text()))

    def load_preview(self) -> None:
        paths = self.path_list()
        if not paths:
            return
        self._suggest_name(paths)
        self.status.setText("reading a preview…")
        self.ctx.tasks.submit(_preview, paths, self.options(), title="Preview", key="data-preview", quiet=True,
                              owner=self, on_done=self._on_preview,
                              on_error=lambda exc: self.status.setText(f"cannot preview: {exc}"))

    def _on_preview(self, result: Any) -> None:
        pv, draft = result
        headers = [f"{c}\n{pv.hints[c].type} · {pv.hints[c].odd_rows} odd" if c in pv.hints else
                   f"{c}\n{pv.types.get(c, '')}" for c in pv.columns]
        self.preview_model.set_rows(headers, pv.rows)
        self.preview_view.resizeColumnsToContents()
        if not self.contract.toPlainText().strip() or self.contract.toPlainText() == self._draft:
            self.contract.setPlainText(draft)  # a draft the user has not edited follows the files chosen
            self._draft = draft
        proposed = [w for w in pv.null_words if w not in parse_null_words(self.null_words.text())]
        if proposed and not self._null_words_edited:
            self.null_words.setText(", ".join(parse_null_words(self.null_words.text()) + tuple(proposed)))
        hinted = ""
        if pv.hints:
            hinted = (f" {', '.join(pv.hints)}: number column(s) with a few other values"
                      + (f" ({', '.join(repr(w) for w in proposed)} proposed as null words)" if proposed else "")
                      + "; see the comments in the contract.")
        self.status.setText(f"{pv.format}: {len(pv.files)} file(s); first {len(pv.rows)} rows shown with the types a "
                            f"sample suggests. Edit the draft contract, then Ingest.{hinted}")

    # -- ingest ------------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self.task is not None and self.task.running:
            return
        paths, dataset = self.path_list(), self.dataset.text().strip()
        if not paths or not dataset:
            self.status.setText("choose files and a dataset name first")
            return
        contract = self.contract.toPlainText() if self.use_contract.isChecked() else None
        from mlops_desktop.data import catalog

        try:
            before = catalog.latest(self.ctx.workspace.db, dataset)
        except Exception:  # noqa: BLE001 - a bad name is reported by the ingestion itself
            before = None
        self._before_id = before.id if before is not None else None
        self._dataset_name = dataset
        self.progress.setValue(0)
        self.progress.show()
        self.ingest_button.setEnabled(False)
        self.rejects_button.hide()
        self.status.setText("ingesting…")
        self.task = self.ctx.tasks.submit(_ingest, self.ctx.workspace, paths, dataset, self.options(), contract,
                                          self.mode.currentText(), self.partition_columns(),
                                          title=f"Ingest {dataset}", owner=self,
                                          on_done=self._on_done, on_error=self._on_error)
        self.task.progressed.connect(self._on_progress)
        self.task.was_cancelled.connect(self._on_cancelled)

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.status.setText(message)

    def _on_done(self, result: Any) -> None:
        self.result = result
        self.progress.setValue(1000)
        self.ingest_button.setEnabled(True)
        drift = f"; schema drift: {'; '.join(result.drift)}" if result.drift else ""
        blank = (f", {result.blank_lines:,} blank line{'' if result.blank_lines == 1 else 's'} skipped"
                 if result.blank_lines else "")
        self.status.setText(f"stored {result.dataset}@{result.version}: {result.rows_in:,} rows in, "
                            f"{result.rows_stored:,} stored, {result.rows_rejected:,} rejected{blank}{drift}")
        self.rejects_button.setVisible(result.rows_rejected > 0)
        self.cancel_button.setText("Close")
        self.ingested.emit(result)

    def _on_error(self, exc: BaseException) -> None:
        self.progress.hide()
        self.ingest_button.setEnabled(True)
        self.status.setText(f"not ingested, nothing was stored: {exc}")

    def _on_cancelled(self) -> None:
        from mlops_desktop.data import catalog

        self.progress.hide()
        self.ingest_button.setEnabled(True)
        # A cancel that arrives after the commit cannot undo it: say what is true.
        after = catalog.latest(self.ctx.workspace.db, self._dataset_name)
        if after is not None and after.id != self._before_id:
            self.status.setText(f"cancel came too late: the ingestion had finished and is stored as {after.ref}")
        else:
            self.status.setText("cancelled; nothing was stored")

    def cancel(self) -> None:
        if self.task is not None and self.task.running:
            self.task.cancel()
            return
        self.reject()

    def _show_rejects(self) -> None:
        if self.result is not None:
            self.ctx.navigate("data", dataset=f"{self.result.dataset}@{self.result.version}", tab="rejects")
            self.accept()
