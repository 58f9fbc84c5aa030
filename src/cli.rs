//! Every flag of `workbench`, with its help text: `--help` is the manual.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::augment::Strategy;
use crate::domain::{DEFAULT_SEED, SplitSpec};
use crate::export::LabelSource;
use crate::store::PairFilter;
use crate::teacher::tune::ProbeDepth;

const ABOUT: &str = "A terminal workbench for e-commerce search relevance.

An explainable LLM teacher runs locally (mistral.rs, GGUF on CPU) and judges (query, product)
pairs step by step: what the query asks, what the item is, a verdict per dimension (category,
brand, model, color, size …), a conclusion and a label with a probability per label. Judgments
live in one SQLite file; annotators review and correct them; audits, exports and students read them.";

const AFTER: &str = "Start here:
  scripts/fetch-models.sh                       fetch the local teacher and student base
  workbench init                                create ./workbench.db with the ESCI scale
  workbench import fixtures/esci-fixture.jsonl  200 real, human-labelled ESCI pairs
  workbench teach --limit 10                    judge 10 pairs with the local teacher
  workbench stats                               what the database holds
  workbench show 73232 B097SWY976               one pair, its rationale and distribution
  workbench review --annotator ana              review and correct judgments (? for keys)
  workbench audit && workbench report           rule findings, agreement figures, report.html
  workbench augment --per-query 10              more pairs from the catalog for the teacher
  workbench student train                       distil the teacher into a MiniLM student
  workbench compare --split test                teacher vs student vs human
  workbench export --out dist                   distillation data for other trainers";

#[derive(Debug, Parser)]
#[command(name = "workbench", version, about = ABOUT, after_help = AFTER, max_term_width = 100)]
pub struct Cli {
    /// The database: a SQLite file, or a team's PostgreSQL database as a URL
    /// (`postgres://USER@HOST/DB`, or `postgres:///DB?host=/run/postgresql` for a local socket;
    /// the password from PGPASSWORD or ~/.pgpass). Every command and the review app run on
    /// either; `db copy` moves a project between them.
    #[arg(
        long,
        global = true,
        env = "WORKBENCH_DB",
        default_value = "workbench.db",
        value_name = "PATH|URL"
    )]
    pub db: PathBuf,

    /// Without a command, `workbench` opens the review app (`workbench review`).
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a database (or check an existing one) and choose its label scale.
    Init(InitArgs),
    /// The settings a command runs with and where each came from: built-in defaults, the
    /// user's config file, `workbench.toml` beside the database, the environment, the flags.
    Config(ConfigArgs),
    /// Import (query, product) pairs from JSONL or CSV; re-importing adds nothing twice.
    Import(ImportArgs),
    /// Counts of pairs, queries, labels, judgments and reviews.
    Stats(StatsArgs),
    /// Check the database: SQLite's integrity, and every column the store derives from other
    /// rows (a pair's picked judgment, its reviewed flag) against those rows; repairs what
    /// disagrees and says what. `--json` prints one object.
    Check(StatsArgs),
    /// Judge pairs with the teacher; resumable, each judgment committed as it finishes.
    Teach(TeachArgs),
    /// One pair: its text, the teacher's rationale step by step and the distribution.
    Show(ShowArgs),
    /// Review and correct the teacher's judgments in a keyboard-driven terminal app (`?` for keys).
    Review(ReviewArgs),
    /// Write CoT + score data for student distillation (cot, margin_mse, soft_labels,
    /// distill_kl, sft), split by query, atomically, with a manifest.
    Export(ExportArgs),
    /// Grow the data beyond the human labels: new (query, item) pairs from the catalog in the
    /// store (bm25 matches, other queries' items, random items) for the teacher to label.
    Augment(AugmentArgs),
    /// Check every judgment against rules (label vs dimensions, grounding, confidence,
    /// disagreement, parse failures, prompt injection) and store the findings for review.
    Audit(AuditArgs),
    /// Agreement of the teacher with gold labels and annotators: accuracy, macro-F1, kappa,
    /// confusion matrix, calibration, corrections per dimension, inter-annotator agreement.
    Metrics(MetricsArgs),
    /// Write one self-contained HTML report (plots, findings, the worst pairs' text).
    Report(ReportArgs),
    /// Distil the teacher into a small student (MiniLM cross- or bi-encoder), score pairs with
    /// it, or import a student's predictions.
    #[command(subcommand)]
    Student(StudentCommand),
    /// Fit the teacher to the human labels: `teacher calibrate` (its label distribution), `teacher
    /// tune` (teach the local GGUF the reviews).
    #[command(subcommand)]
    Teacher(TeacherCommand),
    /// Teacher vs student vs human on the same pairs: accuracy, macro-F1, kappa, NDCG@10,
    /// agreement, and the pairs where teacher and student differ most.
    Compare(CompareArgs),
    /// Measure throughput (import, teacher) on generated or fixture data.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Move a project between a SQLite file and a team's PostgreSQL: `db copy`.
    #[command(subcommand)]
    Db(DbCommand),
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy a whole project (pairs, judgments, annotations, students, findings, calibrations,
    /// settings) into a new, empty database, keeping every id; then check each table's rows and
    /// hash on both sides.
    Copy(CopyArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "The destination is created (or must be empty) and written in one
transaction: a copy that fails or is killed leaves it as it was. Full-text indexes are rebuilt
where they are needed; teach claims stay behind. The source is only read. --db is not used.

Examples:
  workbench db copy --from workbench.db --to postgres://ana@db.example/relevance
  workbench db copy --from postgres://ana@db.example/relevance --to backup.db"
)]
pub struct CopyArgs {
    /// The project to copy: a SQLite file or a postgres:// URL.
    #[arg(long, value_name = "FILE|URL")]
    pub from: PathBuf,
    /// Where it goes: a new SQLite file or an empty PostgreSQL database (created if the role may).
    #[arg(long, value_name = "FILE|URL")]
    pub to: PathBuf,
    /// Print each table's rows and hash as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The label scale: esci (E/S/C/I), wands (Exact/Partial/Irrelevant), binary, or a TOML file
    /// with `name` and `[[labels]]` tables of key, name, gain and definition.
    #[arg(long, default_value = "esci", value_name = "esci|wands|binary|FILE")]
    pub scale: String,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A .jsonl or .csv file with the ESCI fields: query_id, query, product_id, title,
    /// description, brand, attributes, esci_label (see --map for other names).
    pub file: PathBuf,

    /// Other column names, as field=column pairs (`query=search_term,label=grade`) or a TOML
    /// file of them. Fields: query_id, query, product_id, title, description, brand,
    /// attributes, label, split.
    #[arg(long, value_name = "SPEC|FILE")]
    pub map: Option<String>,

    /// Import the valid rows and write the rejected ones, each with its line and reason, to
    /// FILE.rejected.jsonl beside the input. Without it, one bad row stops the import and
    /// nothing of the file is stored.
    #[arg(long)]
    pub skip_invalid: bool,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Rules (name · group):
  category-mismatch-top-label  label       category mismatch, yet labelled Exact
  all-match-bottom-label       label       every dimension matches, yet labelled Irrelevant
  conclusion-other-label       label       the conclusion names another label
  ungrounded-item-value        grounding   a quoted item value is not in the item text
  ungrounded-query-value       grounding   a quoted query value is not in the query
  high-entropy                 confidence  the distribution is close to uniform
  samples-disagree             confidence  self-consistency samples disagree
  teacher-vs-gold              disagreement
  teacher-vs-annotator         disagreement
  teacher-vs-student           disagreement  scores differ by more than --student-margin
  parse-failure                output
  truncated-output             output
  degenerate-step              output      a step loops on a word or phrase, or copies another
  injection                    injection   item text that tries to instruct the model

Re-running replaces the findings of the rules run; review them with `workbench review`
(filter `f` → flagged by audit).")]
pub struct AuditArgs {
    /// Rules or groups to run, comma-separated; `all` runs every rule.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "all",
        value_name = "RULE|GROUP,...",
        value_parser = crate::audit::Rule::named
    )]
    pub rules: Vec<crate::audit::RuleSet>,

    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,

    /// Print the agreement metrics after the audit (as `workbench metrics` does).
    #[arg(long)]
    pub metrics: bool,

    /// The student to compare against (default: the newest one, if any).
    #[arg(long, value_name = "NAME")]
    pub student: Option<String>,

    /// Entropy, as a share of its maximum, above which a distribution is flagged.
    #[arg(long, default_value_t = 0.9, value_name = "0..1")]
    pub max_entropy: f64,

    /// Difference of teacher expected gain and student score above which they disagree.
    #[arg(long, default_value_t = 0.5, value_name = "0..1")]
    pub student_margin: f64,

    /// Read the teacher through its calibration (`workbench teacher calibrate`) where it has
    /// one: the entropy rule, and the teacher's label and score held against gold labels,
    /// annotators and the student, use the calibrated distribution; rules about the rationale
    /// keep the label it was written with. Findings say "the calibrated teacher".
    #[arg(long)]
    pub calibrated: bool,
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,

    /// The student to plot against the teacher (default: the newest one, if any).
    #[arg(long, value_name = "NAME")]
    pub student: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The HTML file to write.
    #[arg(long, default_value = "report.html", value_name = "FILE")]
    pub out: PathBuf,

    /// The student to plot against the teacher (default: the newest one, if any).
    #[arg(long, value_name = "NAME")]
    pub student: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_help = "Strategies:
  lexical      items ranking high for the query by bm25 over title and brand (SQLite FTS5):
               near misses and hard negatives
  cross-query  items imported with other queries: in-domain negatives
  random       any item of the catalog: easy negatives
--per-query is shared out over the strategies; a strategy short of candidates passes its rest on.
Only the catalog, the imported pairs and the seed decide the choice: running again adds only
what is missing.

Then label and use them:
  workbench teach --only augmented --mode score
  workbench export --out dist --include-augmented
  workbench student train --include-augmented")]
pub struct AugmentArgs {
    /// New pairs per query.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub per_query: usize,
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "lexical,cross-query,random",
        value_name = "STRATEGY,..."
    )]
    pub strategy: Vec<Strategy>,
    /// The seed of the random choices; the same seed adds the same pairs.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TeacherCommand {
    /// Fit a per-label bias and a temperature to each teacher's (model and prompt) label
    /// distribution against the human labels (annotators' first, else imported gold) of the
    /// train split (of the dev split for a teacher fine-tuned by `teacher tune`, which learnt the
    /// train labels), store it, and say what it does to the test split. Judgments keep their raw
    /// distribution; compare, show, the review app and export give the calibrated one beside it.
    Calibrate(CalibrateArgs),
    /// Teach the local GGUF teacher the train split's human labels (score mode: a label head on
    /// a middle block) or reviewed rationales (CoT mode: its top blocks fine-tuned), and write
    /// a GGUF file `teach --model` runs.
    Tune(TuneArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Score mode (the default) fits a label head on a middle block; CoT mode, or any
of --layers, --epochs, --lr and --batch, tunes the top blocks.

Tuning the top blocks: the top --layers blocks of the network and its final norm train, in
f32; the blocks below stay as they are, so their output is computed once per pair and each
epoch runs the top blocks alone. The loss is on the answer's tokens only: the label (score mode)
or the rationale JSON that sft.jsonl holds (CoT mode), after the prompt the teacher sees.
A killed run resumes from its last finished epoch (a checkpoint folder beside --out).

A label head (--probe-depth): nothing in the network trains. The first blocks run once per
pair, and a label head (a logistic regression with an L2 penalty, balanced labels by default)
is fitted on their output where the answer starts, each prompt ending with the query's words
the item lacks (--no-evidence leaves that line out). The penalty, and without a given depth the
block, are chosen by cross-validation on the train pairs, a fifth of their queries held out at a
time (the heads' macro-F1 on queries they did not see). The written file is the network cut
after that block with the head as its output: it judges in score mode only, in about
N/blocks of the time, and a killed run resumes from the pairs already computed.

Examples:
  workbench teacher tune --out models/teacher/probe.gguf
  workbench teacher tune --probe-depth 12 --out models/teacher/probe12.gguf
  workbench teacher tune --layers 2 --epochs 2 --out models/teacher/tuned.gguf
  workbench teacher tune --mode cot --out models/teacher/cot.gguf
  workbench teach --mode score --model models/teacher/probe.gguf --only all
  workbench compare --split test"
)]
pub struct TuneArgs {
    /// Where the tuned GGUF file goes; judgments made with it carry its file name.
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    /// The GGUF file to start from (llama architecture). Default: the SmolLM2 file fetched into
    /// models/.
    #[arg(long, value_name = "PATH", env = "WORKBENCH_MODEL")]
    pub model: Option<PathBuf>,
    /// What the answer is: the label alone (score) or the rationale JSON (cot).
    #[arg(long, value_enum, default_value_t = TeachMode::Score)]
    pub mode: TeachMode,
    /// Which pairs train, by query; as `student train` takes it. Default: `imported` when every
    /// imported pair carries a split, else `by-query:80/10/10`.
    #[arg(long, value_parser = SplitSpec::parse, value_name = "SPEC")]
    pub split: Option<SplitSpec>,
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Top blocks of the network that train [default: 2]. Any of --layers, --epochs, --lr and
    /// --batch tunes the top blocks in score mode too, instead of fitting a label head.
    #[arg(long, value_name = "N")]
    pub layers: Option<usize>,
    /// [default: 2]
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
    /// Peak learning rate (AdamW; warmup over the first tenth of the steps, then a linear fall)
    /// [default: 0.0002].
    #[arg(long, value_name = "LR")]
    pub lr: Option<f64>,
    /// Pairs per step [default: 8].
    #[arg(long, value_name = "N")]
    pub batch: Option<usize>,
    /// How the loss weighs each pair: `balanced` by the inverse of its label's share of the
    /// train pairs (a teacher that has seen few Irrelevant pairs still learns to say it), or
    /// `none`. Default: `balanced` for a probe, `none` for the top blocks.
    #[arg(long, value_enum)]
    pub class_weights: Option<ClassWeights>,
    /// Tune on prompts that end with the query's words the item lacks (as `teach --evidence`
    /// asks); `teach` then always asks the written model that way. The default for a label
    /// head, whose state at the answer's start reads that line; the top blocks learn nothing
    /// from it.
    #[arg(long, conflicts_with = "no_evidence")]
    pub evidence: bool,
    /// A label head on prompts without the line of the query's words the item lacks.
    #[arg(long)]
    pub no_evidence: bool,
    /// Train on at most N pairs (the first by pair id).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Keep the first N blocks of the network and fit a label head on their output (a linear
    /// probe, on the train pairs' labels) instead of tuning the top blocks: what score mode
    /// does by default, with `auto`. A middle block's state tells the labels apart better than
    /// the last one's, and the cut network judges in about N/blocks of the time. The written
    /// file answers labels only. `auto` (the flag alone) tries every block from a fifth to three
    /// fifths of the network.
    #[arg(
        long,
        value_name = "N|auto",
        num_args = 0..=1,
        default_missing_value = "auto",
        value_parser = ProbeDepth::parse,
        conflicts_with_all = ["layers", "epochs", "lr", "batch"]
    )]
    pub probe_depth: Option<ProbeDepth>,
    /// Start over even when --out has a checkpoint.
    #[arg(long)]
    pub restart: bool,
    /// Print the run's summary as JSON.
    #[arg(long)]
    pub json: bool,
}

impl TuneArgs {
    /// Where a label head is fitted, if one is: score mode fits one unless the top blocks'
    /// settings are given, since on unseen queries it labels better than the tuned top blocks,
    /// in a fraction of the time.
    pub fn probe(&self) -> Option<ProbeDepth> {
        let blocks_asked = self.layers.is_some()
            || self.epochs.is_some()
            || self.lr.is_some()
            || self.batch.is_some();
        match (self.probe_depth, self.mode) {
            (Some(d), _) => Some(d),
            (None, TeachMode::Score) if !blocks_asked => Some(ProbeDepth::Auto),
            (None, _) => None,
        }
    }

    /// Whether the prompts end with the query's words the item lacks: asked, else for a label
    /// head (which tells the labels apart better with it on unseen queries), else not.
    pub fn evidence(&self) -> bool {
        self.evidence || (!self.no_evidence && self.probe().is_some())
    }

    /// Whether the loss weighs each pair by the inverse of its label's share: asked, else for a
    /// label head (which otherwise seldom says the labels the train pairs seldom have), else not.
    pub fn balanced(&self) -> bool {
        let default = if self.probe().is_some() {
            ClassWeights::Balanced
        } else {
            ClassWeights::None
        };
        self.class_weights.unwrap_or(default) == ClassWeights::Balanced
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Vector scaling (Guo et al., 2017) of the label log-probabilities:
p' = softmax(a · log p + b), fitted by maximum likelihood; the bias corrects the prior a model
puts on some labels whatever the input (\"Calibrate Before Use\", Zhao et al., 2021). With
--objective macro-f1, each label's bias is moved to give the fitted pairs' labels the best
macro-F1: a teacher whose labels a team scores by macro-F1 says its rare labels more often than
their probabilities alone would. Run it again after more reviews: the newest calibration of a
teacher applies.

Examples:
  workbench teacher calibrate && workbench compare --split test
  workbench teacher calibrate --objective macro-f1"
)]
pub struct CalibrateArgs {
    /// Which pairs fit it (train) and which measure it (test), by query; as `student train`
    /// takes it. Default: `imported` when every imported pair carries a split, else
    /// `by-query:80/10/10`.
    #[arg(long, value_parser = SplitSpec::parse, value_name = "SPEC")]
    pub split: Option<SplitSpec>,
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Fewest human-labelled train pairs to fit a teacher on.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub min_pairs: usize,
    /// What the fit makes best on the fitted pairs.
    #[arg(long, value_enum, default_value_t = CalibrationObjectiveArg::LogLoss)]
    pub objective: CalibrationObjectiveArg,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CalibrationObjectiveArg {
    /// The human labels' likelihood: probabilities that mean what they say, as a student
    /// distilled by KL needs them.
    LogLoss,
    /// Each label's bias set for the best macro-F1 of the argmax labels on the fitted pairs.
    MacroF1,
}

impl From<CalibrationObjectiveArg> for crate::domain::CalibrationObjective {
    fn from(a: CalibrationObjectiveArg) -> Self {
        match a {
            CalibrationObjectiveArg::LogLoss => Self::LogLoss,
            CalibrationObjectiveArg::MacroF1 => Self::MacroF1,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum StudentCommand {
    /// Train a student on all-MiniLM-L6-v2 from the teacher's judgments and the human labels
    /// (train split); by default its heads, on the frozen encoder.
    Train(Box<StudentTrainArgs>),
    /// Score every pair with a trained student into the store (resumable, batched).
    Score(StudentScoreArgs),
    /// Import a student's predictions from a JSONL or CSV file of query_id, product_id and
    /// score (0..1) and/or distribution (a list over the scale, or an object by label key).
    Import(StudentImportArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeepArg {
    /// The epoch with the best macro-F1 on dev.
    Best,
    /// The last epoch trained.
    Last,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Every format.
    All,
    Cot,
    #[value(name = "margin_mse")]
    MarginMse,
    #[value(name = "soft_labels")]
    SoftLabels,
    #[value(name = "distill_kl")]
    DistillKl,
    Sft,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EncoderArg {
    /// The base encoder as it is; the heads alone learn.
    Frozen,
    /// Every weight learns (after --probe-epochs of the heads alone).
    FineTune,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StudentKindArg {
    /// Interaction-based: query and item read together, in one sequence.
    Cross,
    /// Representation-based: query and item embedded apart and compared (the steadier of the two
    /// on unseen queries; items can be embedded once, ahead of time).
    Bi,
}

#[derive(Debug, Args)]
#[command(after_help = "Losses (--losses, all on by default):
  kl          KL divergence to the teacher's distribution over the scale, softened by --temperature
  margin-mse  Walmart's Margin-MSE: the student's score margin between two items of one query
              against the teacher's
  cot         MKD's CoT heads: predict the rationale's verdict per dimension (category, brand …)
  Human labels (annotator, else imported gold) add a cross-entropy term of weight --human-weight;
  0 trains on the teacher alone. The teacher's terms weigh --teacher-weight. By default (auto)
  that is its kappa with the human labels of the dev split (else of the train split), floored at
  0; when it is above 0, a second student is trained without the teacher's terms and the one
  with the better dev macro-F1 is kept (both stay in OUT/candidates/).

The defaults are the recipe that beat TF-IDF + logistic regression on unseen ESCI queries
(BENCHMARKS.md): a bi-encoder on the first 3 layers of a frozen MiniLM, 64 tokens, its heads
trained for 40 epochs on the embeddings, the query's words found in the item, and the query's
other candidates as context, the last epoch kept:
  workbench student train --out students/bi
  workbench student score --name bi && workbench compare --student bi --split test

A cross-encoder on the same frozen encoder (query and item read together):
  workbench student train --kind cross --out students/cross
Fine-tuning the whole encoder (3 epochs, the best dev epoch kept):
  workbench student train --kind cross --encoder fine-tune --out students/cross-tuned")]
pub struct StudentTrainArgs {
    #[arg(long, value_enum, default_value = "bi")]
    pub kind: StudentKindArg,
    /// What a cross-encoder's heads read: `match` (the mean of every token's state, and the
    /// query's and the item's own means, their difference, product and cosine: the better on
    /// unseen queries) or `mean` (the mean of every token's state alone).
    #[arg(long, value_enum, default_value = "match")]
    pub head: HeadArg,
    /// Whether the encoder's weights learn: `frozen` trains the heads alone on the base's
    /// features (computed once, so an epoch takes a moment), `fine-tune` trains everything.
    #[arg(long, value_enum, default_value = "frozen")]
    pub encoder: EncoderArg,
    #[arg(long, hide = true, conflicts_with = "encoder")]
    pub freeze_encoder: bool,
    /// Default: 40 with a frozen encoder, 3 when fine-tuning it.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Read training data from this database or export directory (default: --db).
    #[arg(long, value_name = "DB|EXPORT_DIR")]
    pub from: Option<PathBuf>,
    /// Where the model goes (student.json, model.safetensors, tokenizer.json, checkpoint/).
    /// Default: students/KIND.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The name the student is known by in the database. Default: the --out folder's name.
    #[arg(long)]
    pub name: Option<String>,
    /// The teacher's targets to learn from (see below); `none` learns from the human labels alone.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "kl,margin-mse,cot",
        value_name = "LOSS,..."
    )]
    pub losses: Vec<LossName>,
    /// Weight of the human labels' cross-entropy; 0 learns from the teacher alone.
    #[arg(long, default_value_t = 1.0)]
    pub human_weight: f64,
    /// Weight of the teacher's targets: a number, or `auto`, the teacher's Cohen's kappa with
    /// the human labels of the dev split (of the train split when fewer than 20 dev pairs have
    /// both; floored at 0, so a teacher at chance level cannot drown the humans; 1 when there
    /// are no human labels to learn from). Dev comes first because a teacher tuned on the train
    /// pairs' labels repeats them. An auto weight above 0 is kept only if a student trained
    /// with it beats one trained without it on dev (macro-F1); that trains two.
    #[arg(long, default_value = "auto", value_parser = parse_teacher_weight, value_name = "auto|W")]
    pub teacher_weight: TeacherWeight,
    /// Which of the teacher's distributions the teacher's targets are: `calibrated` (by `teacher
    /// calibrate`: a raw teacher's prior on its favourite label taken out, so a student learns
    /// the rarer labels it does tell apart), `raw`, or `auto`: calibrated where the teacher's
    /// newest calibration was fitted on this same split and seed (so none of its fit pairs is a
    /// test pair here), raw elsewhere. From an export directory, `auto` is `raw`.
    #[arg(long, value_enum, default_value = "auto")]
    pub teacher_distribution: TeacherDistributionArg,
    /// How the human labels' cross-entropy weighs each label: `balanced` by the inverse of its
    /// share of the train pairs (rare labels count as much as common ones, as macro-F1 does), or
    /// `none`.
    #[arg(long, value_enum, default_value = "balanced")]
    pub class_weights: ClassWeights,
    /// Softening temperature of the KL term; 0 learns the teacher's top label alone (a hard
    /// target, weighted per label as --class-weights says).
    #[arg(long, default_value_t = 2.0)]
    pub temperature: f64,
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Peak learning rate of the encoder.
    #[arg(long, default_value_t = 5e-5)]
    pub learning_rate: f64,
    /// Peak learning rate of the fresh heads (alone while probing, or beside the encoder); once
    /// probed they follow --learning-rate.
    #[arg(long, default_value_t = 1e-3)]
    pub head_learning_rate: f64,
    /// Share of the steps over which the learning rate rises to its peak, before it falls
    /// linearly to 0.
    #[arg(long, default_value_t = 0.1, value_name = "SHARE")]
    pub warmup: f64,
    /// Stop after N epochs without a better macro-F1 on the dev split.
    #[arg(long, value_name = "N")]
    pub patience: Option<usize>,
    /// Which epoch's weights the student keeps: the one with the best macro-F1 on the dev
    /// split, or the last. A dev split of a few queries picks by noise, so the default is the
    /// last with a frozen encoder (its training converges) and the best when fine-tuning it.
    #[arg(long, value_enum)]
    pub keep: Option<KeepArg>,
    /// The encoder's dropout while training (MiniLM was pre-trained with 0.1).
    #[arg(long, default_value_t = 0.1, value_name = "P")]
    pub dropout: f64,
    /// With --encoder fine-tune: train the heads alone for the first N epochs, on the encoder's
    /// features computed once (such an epoch takes a moment), then fine-tune everything at --learning-rate: linear
    /// probing, then fine-tuning, which keeps more of what the encoder knows about queries it
    /// has not seen.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub probe_epochs: usize,
    /// A frozen bi-encoder's heads also read how a pair's cosine stands among the other
    /// candidates of its query (a z-score over the query's pairs), so scoring takes a query's
    /// pairs together. On by default where it applies; this turns it off.
    #[arg(long)]
    pub no_query_context: bool,
    #[arg(long, hide = true, conflicts_with = "no_query_context")]
    pub query_context: bool,
    /// The heads read the encoder's features alone. By default they also read how much of the
    /// query's own words the item's text holds (in its title, in its whole text, and the
    /// query's numbers it lacks): what a lexical model sees and an embedding blurs, such as a
    /// model number or a size.
    #[arg(long)]
    pub no_lexical: bool,
    #[arg(long, hide = true, conflicts_with = "no_lexical")]
    pub lexical: bool,
    /// L2 penalty on the heads' weights (added to the mean loss).
    #[arg(long, default_value_t = 0.003, value_name = "L")]
    pub head_l2: f64,
    /// Stop after this many steps in all.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Tokens per input (the cross-encoder's query and item together).
    #[arg(long, default_value_t = 64)]
    pub max_tokens: usize,
    /// Keep only the base encoder's first N transformer layers (MiniLM has 6): a smaller,
    /// faster student, as layer-dropping distillation does. Scoring time is about proportional.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub layers: usize,
    /// The student trains on `train` and picks its epoch on `dev`. How to split, always by query (no query in two splits): `by-query:80/10/10` (hashed by
    /// --seed), `fold:K/N` (fold K of N is test, half the next fold dev: run K = 1..N for
    /// cross-validation over queries) or `imported` (the pairs' own `split` column). Default:
    /// `imported` when every imported pair carries a split, else `by-query:80/10/10`.
    #[arg(long, value_parser = SplitSpec::parse, value_name = "SPEC")]
    pub split: Option<SplitSpec>,
    /// The seed of the split (as `workbench export` takes it) and of the training order.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Train on augmented pairs too.
    #[arg(long)]
    pub include_augmented: bool,
    /// Train on R × as many augmented pairs as imported ones (a seeded sample of the labelled
    /// augmented train pairs; implies --include-augmented), for a data-size curve: 1, 4, 16.
    #[arg(long, value_name = "R")]
    pub augmented_ratio: Option<f64>,
    /// Start over instead of resuming from --out's checkpoint.
    #[arg(long)]
    pub restart: bool,
    /// The base encoder (model.safetensors, tokenizer.json, config.json). Default: the
    /// all-MiniLM-L6-v2 folder fetched into models/ (WORKBENCH_MODELS, ./models, the checkout's
    /// models/, then ~/.local/share/workbench/models).
    #[arg(long, value_name = "DIR")]
    pub base: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StudentScoreArgs {
    /// The student to score with, by name (default: the newest trained student).
    #[arg(long)]
    pub name: Option<String>,
    /// Or a student directory (registered under --name, else the folder's name).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Pairs per forward pass. Every CPU thread scores one batch at a time (set
    /// RAYON_NUM_THREADS to use fewer).
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Score only the pairs of one split of the student's own (the spec and seed it trained
    /// with), e.g. `test` to measure it sooner.
    #[arg(long, value_enum, default_value = "all")]
    pub split: SplitName,
}

#[derive(Debug, Args)]
pub struct StudentImportArgs {
    pub file: PathBuf,
    /// The name the student is known by (importing again under a name replaces its scores).
    #[arg(long)]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The student (default: the newest one).
    #[arg(long)]
    pub student: Option<String>,
    /// Compare on one split (the student's own: the spec and seed it trained with) or all pairs.
    #[arg(long, value_enum, default_value = "all")]
    pub split: SplitName,
    /// How many of the most different pairs to list.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HeadArg {
    Mean,
    Match,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LossName {
    Kl,
    MarginMse,
    Cot,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClassWeights {
    Balanced,
    None,
}

/// `--teacher-weight`: a number, or None for `auto`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TeacherWeight(pub Option<f64>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TeacherDistributionArg {
    Auto,
    Raw,
    Calibrated,
}

fn parse_teacher_weight(s: &str) -> Result<TeacherWeight, String> {
    if s == "auto" {
        return Ok(TeacherWeight(None));
    }
    match s.parse::<f64>() {
        Ok(w) if w.is_finite() && w >= 0.0 => Ok(TeacherWeight(Some(w))),
        _ => Err(format!("`{s}`: give auto or a number ≥ 0")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SplitName {
    All,
    Train,
    Dev,
    Test,
}

impl SplitName {
    pub fn as_str(self) -> &'static str {
        match self {
            SplitName::All => "all",
            SplitName::Train => "train",
            SplitName::Dev => "dev",
            SplitName::Test => "test",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TeachMode {
    /// Chain of thought: query and item analysis, one verdict per dimension, conclusion, label.
    Cot,
    /// Label only: one short request whose label log-probabilities give the distribution.
    Score,
}

#[derive(Debug, Args)]
pub struct TeachArgs {
    /// Judge at most N pairs in this run.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// Which pairs: `unjudged` (no judgment yet by this model and prompt), `all` (judge again
    /// where this model and prompt have not), `augmented` (unjudged augmented pairs), or a
    /// comma-separated list of pair ids as `QUERY_ID/PRODUCT_ID`.
    #[arg(
        long,
        default_value = "unjudged",
        value_parser = PairFilter::parse,
        value_name = "unjudged|all|augmented|IDS"
    )]
    pub only: PairFilter,

    #[arg(long, value_enum, default_value_t = TeachMode::Cot)]
    pub mode: TeachMode,

    /// Self-consistency: sample K chains per pair and take the label distribution from their
    /// votes (the agreement is kept as a confidence). 1 = one greedy chain whose label
    /// log-probabilities give the distribution.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub samples: usize,

    /// Requests in flight at once. The local CPU teacher is fastest at 1; servers batch them.
    #[arg(long, value_name = "C")]
    pub concurrency: Option<usize>,

    /// Local teacher processes judging side by side, each with its own copy of the model and
    /// CPU cores / N threads. A 135M model's steps are short, and one process spreading each
    /// over every core spends much of it waiting on its threads, so one-thread workers side by
    /// side judge more pairs a minute. Default: one per core, at most 4; 1 = a single process.
    #[arg(long, value_name = "N", conflicts_with = "endpoint")]
    pub workers: Option<usize>,

    /// On a PostgreSQL database, teach processes on any number of machines share the work: each
    /// claims the pairs it is about to judge for this many seconds. A process that dies leaves
    /// its claims, and the others take its pairs once they lapse; a process that finds every
    /// pair left claimed by others waits for them. Longer than one judgment takes.
    #[arg(long, value_name = "SECS", default_value_t = crate::teacher::claims::DEFAULT_LEASE.as_secs_f64())]
    pub lease: f64,

    /// Internal: run as worker K of N of the `teach` that started it: judge the pair ids it
    /// writes to stdin, one per line, and report each judgment on stdout.
    #[arg(long, hide = true, value_name = "K/N")]
    pub shard: Option<String>,

    /// A GGUF file for the local teacher (llama, mistral3, phi2, phi3, starcoder2, qwen2, qwen3,
    /// qwen3moe architectures). Default: the SmolLM2 file fetched into models/
    /// (WORKBENCH_MODELS, ./models, the checkout's models/, then ~/.local/share/workbench/models).
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "endpoint",
        env = "WORKBENCH_MODEL"
    )]
    pub model: Option<PathBuf>,

    /// An OpenAI-compatible server (vLLM, llama.cpp server, mistral.rs server), e.g.
    /// http://127.0.0.1:8080/v1. The key, if any, is read from WORKBENCH_API_KEY.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,

    /// The model name to ask the endpoint for.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "default",
        requires = "endpoint"
    )]
    pub api_model: String,

    /// Seconds the endpoint may take to answer one request before it is asked again.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 300.0,
        requires = "endpoint"
    )]
    pub endpoint_timeout: f64,

    /// Times one request is sent in all when the endpoint does not answer in time, drops the
    /// connection, or answers 429 or 500/502/503/504 (waiting 0.5 s, then twice as long each
    /// time, or as long as its Retry-After says). Other errors stop at once.
    #[arg(long, value_name = "N", default_value_t = 4, requires = "endpoint")]
    pub endpoint_attempts: u32,

    /// Most tokens the teacher may write per judgment.
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<usize>,

    /// Leave the few-shot examples out of the prompt (shorter prompts, faster on small models).
    #[arg(long)]
    pub no_examples: bool,

    /// Characters of each item's description and bullet points the prompt keeps (title, brand,
    /// colour and category are always whole). Default 300; fewer is faster, and the teacher
    /// reads less of each item.
    #[arg(long, value_name = "N")]
    pub detail_chars: Option<usize>,

    /// End each request with the query's words the item lacks ("Query words the item lacks:
    /// m705"), matched lower-cased with a plural's s dropped. A model tuned on such prompts
    /// (a label head by `teacher tune`, by default) is always asked this way.
    #[arg(long)]
    pub evidence: bool,

    /// CoT mode: DRY penalty against loops ("Men's, Men's, Men's, …"). Inside the answer's
    /// strings, a token that would make a repeat of n tokens one longer loses X × 1.75^(n−2) of
    /// its logit; the prompt, JSON keys and the start of each value are free, so answers still
    /// parse. It costs some quoting: an item value that repeats the item analysis word for word
    /// is penalised too. 0 turns it off.
    #[arg(long, value_name = "X", default_value_t = 3.0)]
    pub dry: f32,

    /// CoT mode: subtracted from a token's logit once per earlier occurrence in the prompt and
    /// the answer (OpenAI's frequency_penalty). Default 0.
    #[arg(long, value_name = "X", default_value_t = 0.0)]
    pub frequency_penalty: f32,

    /// CoT mode: subtracted once from the logit of any token already in the prompt or the
    /// answer (OpenAI's presence_penalty). Default 0.
    #[arg(long, value_name = "X", default_value_t = 0.0)]
    pub presence_penalty: f32,

    /// The weight format the local teacher runs in, prepared once in a file beside the model
    /// (NAME.prepared-FORMAT.gguf). Default: q8_0 for cot (decoding many tokens reads every
    /// weight per token: the smaller the better), f32 for score (a long prompt and one token:
    /// f32 matrices go through a blocked GEMM, faster on prompts).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub weights: Option<crate::teacher::gguf::Weights>,
}

#[derive(Debug, Args, Default)]
pub struct ReviewArgs {
    /// Who is reviewing: every change is recorded under this name (default: $USER). On
    /// PostgreSQL the database role is the annotator; leave this out or give the role's name.
    #[arg(long, env = "WORKBENCH_ANNOTATOR", value_name = "NAME")]
    pub annotator: Option<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "A config file sets any flag's default: its top-level keys are the global flags
(db) and `models`, a folder searched first for the local models; each table is a command and
its keys are that command's long flags. For example, in workbench.toml beside the database:

  models = \"/data/models\"
  [teach]
  mode = \"score\"
  workers = 2
  [student.train]
  epochs = 30
  [review]
  annotator = \"ana\"

The environment (WORKBENCH_DB, WORKBENCH_MODEL, WORKBENCH_MODELS, WORKBENCH_ANNOTATOR) and the
command line override both files."
)]
pub struct ConfigArgs {
    /// Print as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The directory to write: OUT/{train,dev,test}/FORMAT.jsonl (and .parquet with --parquet)
    /// and OUT/manifest.json.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Comma-separated formats, or all: cot (one row per pair, the rationale step by step),
    /// margin_mse (query, positive, negative, label = score margin), soft_labels (query,
    /// passage, label in [0,1]), distill_kl (query, positive, negative_1..n, label = scores),
    /// sft (chat messages with the corrected rationale).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "all",
        value_name = "F,...|all"
    )]
    pub format: Vec<ExportFormat>,

    /// How to split, always by query (no query in two splits): `by-query:80/10/10` (hashed by
    /// --seed), `fold:K/N` (fold K of N is test, half the next fold dev: run K = 1..N for
    /// cross-validation over queries) or `imported` (the pairs' own `split` column). Default:
    /// `imported` when every imported pair carries a split, else `by-query:80/10/10`.
    #[arg(long, value_parser = SplitSpec::parse, value_name = "SPEC")]
    pub split: Option<SplitSpec>,

    /// The seed for splits and pair sampling; the same seed gives byte-identical files, and the
    /// same split as `student train` with the same seed.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,

    /// Whose label wins.
    #[arg(long, value_enum, default_value_t = LabelSource::HumanFirst)]
    pub source: LabelSource,

    /// Most margin_mse rows per query.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub max_pairs_per_query: usize,

    /// Negatives per distill_kl row.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub negatives: usize,

    /// Include pairs made by `workbench augment`.
    #[arg(long)]
    pub include_augmented: bool,

    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,

    /// Also write every file as Parquet (FORMAT.parquet beside FORMAT.jsonl, snappy), with its
    /// rows and sha256 in the manifest.
    #[arg(long)]
    pub parquet: bool,

    /// Where the teacher's label wins, take label and score from its calibrated distribution
    /// (`workbench teacher calibrate`) instead of the raw one; such rows say
    /// `teacher_calibrated` as their label_source. cot.jsonl carries both distributions either
    /// way.
    #[arg(long)]
    pub calibrated: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The query id as imported.
    pub query_id: String,
    /// The product id as imported.
    pub product_id: String,
    /// Print one JSON object: the pair, its judgments with rationale and distribution.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Import throughput on a generated JSONL file of N rows (rows/s, peak memory).
    Import {
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// Where to write the generated file and database.
        #[arg(long, default_value = "bench-data")]
        dir: PathBuf,
        /// Short rows (query, title, brand, colour; ~250 bytes) instead of the fixture's full
        /// product text (~1.8 KB a row), to separate per-row cost from bytes written.
        #[arg(long)]
        compact: bool,
        /// Import into this PostgreSQL database instead of a SQLite file in --dir (the same
        /// generated file). The database must hold no pairs: `workbench init` it first, or
        /// let the benchmark create it.
        #[arg(long, value_name = "URL")]
        postgres: Option<String>,
    },
    /// Export throughput on the database `bench import` made (synthetic judgments are added):
    /// soft_labels alone and all formats, rows/s and peak memory.
    Export {
        #[arg(long, default_value = "bench-data")]
        dir: PathBuf,
        /// Times to run each export; every run is printed, then the median. A shared VM's speed
        /// can move by a third within minutes: one run says little.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Export this PostgreSQL database (one `bench import --postgres` filled) instead of the
        /// SQLite file in --dir.
        #[arg(long, value_name = "URL")]
        postgres: Option<String>,
    },
    /// Review app latency on the database `bench import` made: key press to frame drawn
    /// (median, p99) for scrolling, paging, filtering and opening a pair, and memory.
    Review {
        #[arg(long, default_value = "bench-data")]
        dir: PathBuf,
        /// Key presses per measurement.
        #[arg(long, default_value_t = 200)]
        presses: usize,
        /// Review this PostgreSQL database (one `bench import --postgres` filled) instead of the
        /// SQLite file in --dir.
        #[arg(long, value_name = "URL")]
        postgres: Option<String>,
    },
    /// Teacher throughput on fixture pairs: prompt and generation tokens/s, CoT pairs/min,
    /// score-only pairs/s, with and without the shared-prefix cache.
    Teacher {
        /// Fixture pairs to judge per measurement.
        #[arg(long, default_value_t = 5)]
        pairs: usize,
        #[arg(long, value_name = "PATH")]
        model: Option<PathBuf>,
        /// JSONL pairs to judge (spread over the file); with gold labels the last column counts
        /// agreement with them.
        #[arg(long, default_value = "fixtures/esci-fixture.jsonl")]
        fixture: PathBuf,
        /// Configurations to measure, comma-separated. `before`: the GGUF as shipped with F16
        /// activations; `q8`: requantised to Q8_0 with F32 activations (the default); `q8-f16`:
        /// Q8_0 with F16 activations; `f32`: all weights f32; `nocache`: no prefix cache;
        /// `noex`: no few-shot examples; `c4`: 4 requests in flight. Names: cot-before,
        /// cot-q8-f16, cot-q8, cot-q8-nocache, cot-q8-noex, cot-q8-c4, cot-f32, score-before,
        /// score-q8-f16, score-q8, score-q8-noex, score-q8-c4, score-f32 (the score default),
        /// score-f32-c4, score-f32-d100 and score-f32-d0 (100 or 0 characters of item details).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "cot-before,cot-q8,cot-q8-noex,score-before,score-q8,score-q8-noex"
        )]
        configs: Vec<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_flag_is_defined_consistently() {
        Cli::command().debug_assert();
    }

    fn tune(args: &[&str]) -> Result<TuneArgs, clap::Error> {
        let line = ["workbench", "teacher", "tune", "--out", "t.gguf"];
        match Cli::try_parse_from(line.iter().chain(args))?.command {
            Some(Command::Teacher(TeacherCommand::Tune(t))) => Ok(t),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn score_mode_fits_a_label_head_unless_the_top_blocks_settings_are_given() {
        let probe = |args: &[&str]| tune(args).unwrap().probe();
        assert_eq!(probe(&[]), Some(ProbeDepth::Auto));
        assert_eq!(probe(&["--probe-depth"]), Some(ProbeDepth::Auto));
        assert_eq!(probe(&["--probe-depth", "auto"]), Some(ProbeDepth::Auto));
        assert_eq!(probe(&["--probe-depth", "12"]), Some(ProbeDepth::Fixed(12)));
        assert_eq!(probe(&["--layers", "2"]), None);
        assert_eq!(probe(&["--lr", "1e-4"]), None);
        assert_eq!(probe(&["--mode", "cot"]), None);
        assert!(tune(&["--probe-depth", "--epochs", "3"]).is_err());
        let err = tune(&["--probe-depth", "deep"]).unwrap_err().to_string();
        assert!(err.contains("neither a block number nor `auto`"), "{err}");
    }

    /// A label head reads the line of the query's words the item lacks unless told not to; the
    /// top blocks do only when asked.
    #[test]
    fn a_label_head_is_fitted_on_prompts_with_the_missing_words_unless_told_not_to() {
        let evidence = |args: &[&str]| tune(args).unwrap().evidence();
        assert!(evidence(&[]));
        assert!(evidence(&["--probe-depth", "12"]));
        assert!(!evidence(&["--no-evidence"]));
        assert!(!evidence(&["--layers", "2"]));
        assert!(evidence(&["--layers", "2", "--evidence"]));
        assert!(!evidence(&["--mode", "cot"]));
        assert!(tune(&["--evidence", "--no-evidence"]).is_err());
    }

    #[test]
    fn a_label_head_weighs_its_labels_by_their_rarity_unless_told_not_to() {
        let balanced = |args: &[&str]| tune(args).unwrap().balanced();
        assert!(balanced(&[]));
        assert!(balanced(&["--probe-depth", "auto"]));
        assert!(!balanced(&["--class-weights", "none"]));
        assert!(!balanced(&["--layers", "2"]));
        assert!(balanced(&["--layers", "2", "--class-weights", "balanced"]));
        assert!(!balanced(&["--mode", "cot"]));
    }

    /// Parsing reads each flag into its field's type (a mismatch only shows when a command
    /// line reaches it).
    #[test]
    fn the_student_and_split_flags_parse_into_their_types() {
        let cli = Cli::try_parse_from([
            "workbench",
            "student",
            "train",
            "--teacher-weight",
            "0.5",
            "--losses",
            "kl,margin-mse",
            "--class-weights",
            "none",
            "--split",
            "fold:2/5",
            "--patience",
            "2",
        ])
        .unwrap();
        let Some(Command::Student(StudentCommand::Train(t))) = cli.command else {
            panic!("not student train");
        };
        assert_eq!(t.teacher_weight, TeacherWeight(Some(0.5)));
        assert_eq!(t.losses, [LossName::Kl, LossName::MarginMse]);
        assert_eq!(t.split, Some(SplitSpec::Fold { k: 2, n: 5 }));
        assert_eq!(t.seed, DEFAULT_SEED);
        let cli = Cli::try_parse_from(["workbench", "student", "train"]).unwrap();
        let Some(Command::Student(StudentCommand::Train(t))) = cli.command else {
            panic!("not student train");
        };
        assert_eq!((t.teacher_weight, t.split), (TeacherWeight(None), None));
        let err = Cli::try_parse_from(["workbench", "export", "--out", "d", "--split", "fold:9/5"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("K runs from 1 to N"), "{err}");
        let cli = Cli::try_parse_from(["workbench", "export", "--out", "d"]).unwrap();
        let Some(Command::Export(e)) = cli.command else {
            panic!("not export");
        };
        assert_eq!(
            e.seed, DEFAULT_SEED,
            "export and student train share one seed default"
        );
    }

    #[test]
    fn teach_only_reads_into_a_pair_filter() {
        let only = |v: &str| match Cli::try_parse_from(["workbench", "teach", "--only", v]) {
            Ok(Cli {
                command: Some(Command::Teach(t)),
                ..
            }) => Ok(t.only),
            Ok(_) => panic!("not teach"),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(only("augmented"), Ok(PairFilter::Augmented));
        let Ok(PairFilter::Keys(keys)) = only("q1/p1, q2/p2") else {
            panic!("two keys")
        };
        assert_eq!(
            (keys[1].query_id.as_str(), keys[1].product_id.as_str()),
            ("q2", "p2")
        );
        let err = only("q1").unwrap_err();
        assert!(
            err.contains("expected unjudged, all, augmented or QUERY_ID/PRODUCT_ID"),
            "{err}"
        );
    }
}
