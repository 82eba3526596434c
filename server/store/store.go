// Package store defines what Millrace keeps in its database and the
// interface every database backend implements. Backends live in
// subpackages named after what they wrap (sqlite, postgres); all
// of them pass the same conformance suite in storetest.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Errors every backend returns for the same conditions.
var (
	ErrNotFound   = errors.New("not found")
	ErrConflict   = errors.New("conflict")
	ErrQuota      = errors.New("quota exceeded")
	ErrNotInteger = errors.New("stored value is not a decimal integer")
)

// Token is an API token. Only the SHA-256 of the secret is stored.
type Token struct {
	ID     string
	Name   string
	Hash   []byte
	Scopes []string
	// UserID is the user the token acts for; "" for a token from before
	// users existed, which acts for nobody but itself.
	UserID string
	// Role, when set, gives the token its role's scopes (present and
	// future) instead of Scopes.
	Role       string
	ExpiresAt  *time.Time // nil: never
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

// User is a console user. PasswordHash is an argon2id PHC string, or ""
// for a user who cannot sign in with a password.
type User struct {
	ID           string
	Username     string
	Role         string
	PasswordHash string
	Disabled     bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// UserChange is a change of some of a user's fields (ChangeUser): nil
// fields stay as they are.
type UserChange struct {
	Role         *string
	PasswordHash *string
	Disabled     *bool
}

// Session is a console session. Only the SHA-256 of its id (the cookie
// value) is stored. It belongs to a user or, after a sign-in with a token,
// to that token.
type Session struct {
	Hash       []byte
	UserID     string
	TokenID    string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// AuditEntry is one record of the audit log.
type AuditEntry struct {
	ID        int64 // assigned by the store, increasing
	At        time.Time
	ActorID   string // usr_…, tok_…, or "" when unknown (a failed sign-in) or the system
	ActorName string
	Action    string
	Target    string
	Outcome   string // success, failure or denied
	ClientIP  string
	Detail    string
}

// AuditFilter selects audit entries for ListAudit. Empty fields match
// everything.
type AuditFilter struct {
	Actor  string // matches ActorID or ActorName
	Action string
	Since  time.Time // at or after
	Until  time.Time // before
	Before int64     // the cursor: entries with a smaller id
	Limit  int       // at most this many; default 50
}

// ModuleVersion is one immutable, uploaded version of a module.
type ModuleVersion struct {
	ModuleID  string
	Version   string
	SHA256    string // hex digest of the wasm bytes
	Size      int64
	Manifest  json.RawMessage
	Grant     json.RawMessage // nil until an admin grants capabilities
	CreatedAt time.Time
}

// SecretInfo describes a secret without its value.
type SecretInfo struct {
	Name      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// SealedValue is one value sealed under the secret key: a secret (Kind
// "secret", ID its name) or a webhook trigger's secret (Kind "trigger", ID
// the trigger's id).
type SealedValue struct {
	Kind   string
	ID     string
	Sealed []byte
}

// Kinds of SealedValue.
const (
	SealedSecret  = "secret"
	SealedTrigger = "trigger"
)

// Workflow is a workflow's editable draft and how far it was published.
type Workflow struct {
	ID            string
	Draft         json.RawMessage // the definition being edited
	LatestVersion int             // 0 until first published
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// WorkflowVersion is one published, immutable version of a workflow.
type WorkflowVersion struct {
	WorkflowID string
	Version    int // 1, 2, 3, … in publication order
	Definition json.RawMessage
	CreatedAt  time.Time
}

// Run is one execution of a published workflow version.
type Run struct {
	ID         string
	WorkflowID string
	Version    int
	Status     string // queued, running, succeeded, failed, canceled
	Input      json.RawMessage
	Output     json.RawMessage // nil until the run succeeds
	Error      string
	Trigger    string // what started the run, e.g. "manual"
	CreatedAt  time.Time
	StartedAt  *time.Time
	FinishedAt *time.Time
}

// Finished reports whether a run status is final: succeeded, failed or
// canceled.
func Finished(status string) bool {
	return status == "succeeded" || status == "failed" || status == "canceled"
}

// RunFilter selects runs for ListRuns. Empty fields match everything.
type RunFilter struct {
	WorkflowID string
	Status     string
	Before     string // a run id: list runs older than it (the cursor)
	Limit      int    // at most this many; default 50
}

// NodeRun is the checkpoint of one node in one run.
type NodeRun struct {
	RunID      string
	NodeID     string
	Status     string // running, succeeded, failed, skipped, canceled
	Attempts   int
	Input      json.RawMessage
	Output     json.RawMessage
	Port       string
	Logs       json.RawMessage // JSON array of log records
	Error      string
	StartedAt  *time.Time
	FinishedAt *time.Time
}

// Artifact is a value of a run too large to keep inline in a checkpoint (a
// node's output or input, or the run's output). Its bytes are stored apart
// and go with the run.
type Artifact struct {
	ID          string // art_ + hex
	RunID       string
	NodeID      string // "" for an artifact of the run itself
	Name        string // what it holds for its node, e.g. "output"
	ContentType string
	Size        int64
	SHA256      string // hex digest of Data
	Data        []byte // nil in lists
	CreatedAt   time.Time
}

// Trigger starts runs of a workflow: when a webhook is called, on a cron
// schedule, or when another workflow's run finishes. A trigger goes with
// the workflow it starts and with the workflow it follows.
type Trigger struct {
	ID         string
	WorkflowID string          // the workflow it starts
	Kind       string          // webhook, cron or workflow_finished
	Config     json.RawMessage // the kind's settings, as server/trigger writes them
	Secret     []byte          // webhook: the sealed secret; nil otherwise
	// SourceWorkflowID is, for workflow_finished, the workflow whose runs
	// it follows.
	SourceWorkflowID string
	NextFireAt       *time.Time // cron: the next tick not yet fired
	CreatedAt        time.Time
}

// TriggerFilter selects triggers for ListTriggers. Empty fields match
// everything.
type TriggerFilter struct {
	WorkflowID       string
	Kind             string
	SourceWorkflowID string
}

// Model is a model registered for the accelerator service: the name
// modules load it by, and where it lives on the server's disk.
type Model struct {
	Name string
	// Path is a folder holding model.onnx (and its external data) or an
	// .onnx file; empty for a model that a remote inference server holds.
	Path        string
	Description string
	Version     string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Dataset is a named collection of labelled examples (server/datasets).
type Dataset struct {
	ID            string // ds_ + hex
	Name          string
	LatestVersion int // 0 when it has no version
	// NextVersion is one more than the highest version ever created, so
	// that a deleted version's number is never reused.
	NextVersion int
	CreatedAt   time.Time
}

// DatasetVersion is one immutable, imported version of a dataset. Its
// files live on the server's disk; Meta is their meta.json.
type DatasetVersion struct {
	DatasetID string
	Version   int // 1, 2, 3, … in upload order
	Rows      int64
	Meta      json.RawMessage
	CreatedAt time.Time
}

// TrainingJob is a model being trained, or trained, on a dataset version
// (server/training). Hyperparameters, Events and Result are JSON.
type TrainingJob struct {
	ID              string // tj_ + hex
	Task            string
	DatasetID       string
	DatasetVersion  int
	ModelName       string
	Hyperparameters json.RawMessage
	State           string // queued, running, succeeded, failed, cancelled
	Error           string
	Events          json.RawMessage // an array, one object per finished epoch
	Result          json.RawMessage // nil until it succeeded
	OutputDir       string
	CreatedAt       time.Time
	StartedAt       *time.Time
	FinishedAt      *time.Time
}

// TrainingJobFilter narrows ListTrainingJobs; zero fields match all.
type TrainingJobFilter struct {
	DatasetID      string
	DatasetVersion int // with DatasetID
	ModelName      string
	// Unfinished keeps queued and running jobs only.
	Unfinished bool
}

// Store is everything the server keeps durably.
type Store interface {
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error

	CreateToken(ctx context.Context, t Token) error
	// TokenByHash finds a token by the SHA-256 of its secret. It does not
	// record the use (TouchToken does), so the hot path does not write.
	TokenByHash(ctx context.Context, hash []byte) (Token, error)
	Token(ctx context.Context, id string) (Token, error)
	// TouchToken records that a token was used at the given time.
	TouchToken(ctx context.Context, id string, at time.Time) error
	ListTokens(ctx context.Context) ([]Token, error)
	// DeleteToken revokes a token and ends the sessions signed in with it.
	DeleteToken(ctx context.Context, id string) error

	// CreateUser stores a user; ErrConflict when the username is taken.
	CreateUser(ctx context.Context, u User) error
	User(ctx context.Context, id string) (User, error)
	UserByName(ctx context.Context, username string) (User, error)
	// ListUsers lists users ordered by username.
	ListUsers(ctx context.Context) ([]User, error)
	// ChangeUser sets the fields of c that are not nil, in one statement,
	// and leaves the others as they are stored: of two racing changes
	// (one disabling a user, one resetting their password) both stick,
	// where writing back a whole user as read would undo the other.
	// ErrNotFound for an unknown user.
	ChangeUser(ctx context.Context, id string, c UserChange) error
	// DeleteUser removes a user with its tokens and sessions.
	DeleteUser(ctx context.Context, id string) error

	CreateSession(ctx context.Context, s Session) error
	SessionByHash(ctx context.Context, hash []byte) (Session, error)
	// TouchSession records that a session was used at the given time.
	TouchSession(ctx context.Context, hash []byte, at time.Time) error
	DeleteSession(ctx context.Context, hash []byte) error
	// DeleteUserSessions ends every session of a user.
	DeleteUserSessions(ctx context.Context, userID string) error
	// PruneSessions deletes sessions past their absolute expiry (at or
	// before now) or unused since before idleBefore.
	PruneSessions(ctx context.Context, now, idleBefore time.Time) (int64, error)

	// AppendAudit adds an entry to the audit log. The log is append-only:
	// there is no method to change or delete an entry, only PruneAudit.
	AppendAudit(ctx context.Context, e AuditEntry) error
	// ListAudit lists entries newest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
	// PruneAudit deletes entries older than before: retention by age.
	PruneAudit(ctx context.Context, before time.Time) (int64, error)

	// PutModuleVersion stores a module version and its bytes. Storing the
	// same version with the same bytes again returns created=false and no
	// error; the same version with other bytes returns ErrConflict.
	PutModuleVersion(ctx context.Context, mv ModuleVersion, wasm []byte) (created bool, err error)
	ModuleVersion(ctx context.Context, moduleID, version string) (ModuleVersion, error)
	// ListModuleVersions lists the versions of one module, or of all
	// modules when moduleID is empty, ordered by module id then upload time.
	ListModuleVersions(ctx context.Context, moduleID string) ([]ModuleVersion, error)
	ModuleWasm(ctx context.Context, sha256 string) ([]byte, error)
	// DeleteModuleVersion removes a version, and its bytes when no other
	// version shares them.
	DeleteModuleVersion(ctx context.Context, moduleID, version string) error
	SetGrant(ctx context.Context, moduleID, version string, grant json.RawMessage) error

	// KV operations act on one module's namespace.
	KVGet(ctx context.Context, namespace, key string) ([]byte, error)
	// KVSet stores a value; ErrQuota when the namespace would exceed
	// maxTotal bytes of keys and values.
	KVSet(ctx context.Context, namespace, key string, value []byte, maxTotal int64) error
	KVDelete(ctx context.Context, namespace, key string) error
	// KVAdd atomically adds delta to the decimal integer under key (a
	// missing key counts as 0) and returns the new value.
	KVAdd(ctx context.Context, namespace, key string, delta int64) (int64, error)

	// PutWorkflowDraft creates a workflow or replaces its draft.
	PutWorkflowDraft(ctx context.Context, id string, draft json.RawMessage) error
	Workflow(ctx context.Context, id string) (Workflow, error)
	// ListWorkflows lists workflows ordered by id.
	ListWorkflows(ctx context.Context) ([]Workflow, error)
	// DeleteWorkflow removes a workflow with its draft and versions.
	DeleteWorkflow(ctx context.Context, id string) error
	// PublishWorkflow stores definition as the workflow's next version and
	// returns its number; ErrNotFound when the workflow does not exist.
	PublishWorkflow(ctx context.Context, id string, definition json.RawMessage) (int, error)
	WorkflowVersion(ctx context.Context, id string, version int) (WorkflowVersion, error)
	// ListWorkflowVersions lists a workflow's versions, oldest first.
	ListWorkflowVersions(ctx context.Context, id string) ([]WorkflowVersion, error)

	CreateRun(ctx context.Context, r Run) error
	// CreateLeasedRun stores a new run holding owner's lease until the
	// given time, in one write: the creating process executes it at once
	// (an eager start), and if that process dies the lease expires and
	// recovery queues the run like any other orphan.
	CreateLeasedRun(ctx context.Context, r Run, owner string, until time.Time) error
	Run(ctx context.Context, id string) (Run, error)
	// UpdateRun stores a run's status, output, error and times. A finished
	// status (succeeded, failed, canceled) also drops the run's lease: a
	// finished run needs no worker, and the executor saves a write.
	UpdateRun(ctx context.Context, r Run) error
	// CancelRun marks a queued or running run canceled and reports
	// whether it was one; a finished run is left alone.
	CancelRun(ctx context.Context, id string, at time.Time) (bool, error)
	// ListRuns lists runs newest first (by id, which sorts by creation),
	// filtered, starting after the cursor id when it is not empty.
	ListRuns(ctx context.Context, f RunFilter) ([]Run, error)
	// PutNodeRun creates or replaces a node's checkpoint.
	PutNodeRun(ctx context.Context, n NodeRun) error
	// RetryRun makes a failed or canceled run queued again, in one
	// transaction: the checkpoints of its unfinished nodes (failed,
	// canceled, running) go with their artifacts, so those nodes run
	// again, and so do the run's own output artifacts, output, error and
	// finish time; succeeded and skipped checkpoints stay. It reports
	// false, changing nothing, when the run is neither failed nor canceled
	// (another retry got there first), and ErrNotFound for an unknown run.
	RetryRun(ctx context.Context, id string) (bool, error)
	// NodeRuns lists a run's node checkpoints by start time.
	NodeRuns(ctx context.Context, runID string) ([]NodeRun, error)
	// AcquireRunLease gives owner the run's lease until the given time if
	// nobody else holds an unexpired one (renewing is acquiring again). It
	// returns false and the current holder's expiry otherwise, and
	// ErrNotFound for an unknown run.
	AcquireRunLease(ctx context.Context, runID, owner string, until time.Time) (bool, time.Time, error)
	// ReleaseRunLease drops owner's lease, if it still holds it.
	ReleaseRunLease(ctx context.Context, runID, owner string) error
	// OrphanedRuns lists runs that need a worker: running with an expired
	// lease (their worker died), or queued since before queuedBefore.
	OrphanedRuns(ctx context.Context, now, queuedBefore time.Time, limit int) ([]string, error)

	// PutArtifact stores an artifact, replacing the run's artifact with
	// the same node and name; ErrNotFound when the run does not exist.
	PutArtifact(ctx context.Context, a Artifact) error
	// Artifact returns one of a run's artifacts with its bytes;
	// ErrNotFound when the run has no artifact with that id.
	Artifact(ctx context.Context, runID, id string) (Artifact, error)
	// ListArtifacts lists a run's artifacts, without their bytes, by node
	// and name.
	ListArtifacts(ctx context.Context, runID string) ([]Artifact, error)
	// DeleteArtifacts removes the artifacts of one node of a run ("" for
	// the run's own).
	DeleteArtifacts(ctx context.Context, runID, nodeID string) error
	// PruneRuns deletes, with their node checkpoints and artifacts, up to
	// limit finished runs (succeeded, failed or canceled) that finished
	// before finishedBefore (the zero time: none by age) or that are not
	// among the keepPerWorkflow newest finished runs of their workflow
	// (newest by creation; 0: none by count). The oldest go first; queued
	// and running runs are never deleted. It returns how many it deleted.
	PruneRuns(ctx context.Context, finishedBefore time.Time, keepPerWorkflow, limit int) (int64, error)
	// ReclaimSpace gives the space of deleted rows back: to the file
	// system (SQLite) or to new rows (PostgreSQL).
	ReclaimSpace(ctx context.Context) error

	PutSecret(ctx context.Context, name string, sealed []byte) error
	Secret(ctx context.Context, name string) ([]byte, error)
	ListSecrets(ctx context.Context) ([]SecretInfo, error)
	DeleteSecret(ctx context.Context, name string) error
	// ResealAll replaces every sealed value (secrets and webhook trigger
	// secrets) with what reseal returns for it, in one transaction: when
	// reseal fails for one, nothing changes. It returns how many it
	// replaced. Secret-key rotation is built on it.
	ResealAll(ctx context.Context, reseal func(SealedValue) ([]byte, error)) (int, error)

	// CreateTrigger stores a trigger; ErrNotFound when its workflow (or
	// the workflow it follows) does not exist.
	CreateTrigger(ctx context.Context, t Trigger) error
	Trigger(ctx context.Context, id string) (Trigger, error)
	// ListTriggers lists triggers oldest first.
	ListTriggers(ctx context.Context, f TriggerFilter) ([]Trigger, error)
	DeleteTrigger(ctx context.Context, id string) error
	// DueCronTriggers lists triggers whose next tick is at or before now,
	// earliest first.
	DueCronTriggers(ctx context.Context, now time.Time, limit int) ([]Trigger, error)
	// ClaimCronTick moves a trigger's next tick from expectedNext to
	// newNext if it is still expectedNext, and reports whether it did:
	// of several processes claiming one tick, exactly one wins and fires.
	ClaimCronTick(ctx context.Context, id string, expectedNext, newNext time.Time) (bool, error)
	// RecordDelivery remembers that the webhook delivery with an
	// Idempotency-Key started runID; an empty runID reserves the key
	// while the run is being started. When the key is already recorded
	// it returns the recorded run id ("" while reserved) and
	// created=false.
	RecordDelivery(ctx context.Context, triggerID, key, runID string) (existingRunID string, created bool, err error)
	// SetDeliveryRun fills in the run of a reserved delivery.
	SetDeliveryRun(ctx context.Context, triggerID, key, runID string) error
	// ForgetDelivery removes a delivery that is still reserved and was
	// reserved before the given time (its run failed to start, or its
	// process died starting it), and reports whether it did.
	ForgetDelivery(ctx context.Context, triggerID, key string, reservedBefore time.Time) (bool, error)
	// PruneDeliveries forgets deliveries recorded before the given time.
	PruneDeliveries(ctx context.Context, before time.Time) (int64, error)

	// PutModel registers a model or replaces its registration (keeping
	// its creation time), and reports whether it was new.
	PutModel(ctx context.Context, m Model) (created bool, err error)
	Model(ctx context.Context, name string) (Model, error)
	// ListModels lists registered models ordered by name.
	ListModels(ctx context.Context) ([]Model, error)
	DeleteModel(ctx context.Context, name string) error

	// CreateDatasetVersion stores a dataset version. Version 1 creates its
	// dataset (with d's name) when it does not exist yet; an existing
	// dataset keeps its name. A later version is only added to a dataset
	// that exists, else ErrNotFound: an import racing the dataset's
	// deletion must not bring it back. ErrConflict when the version
	// exists.
	CreateDatasetVersion(ctx context.Context, d Dataset, v DatasetVersion) error
	Dataset(ctx context.Context, id string) (Dataset, error)
	// ListDatasets lists datasets ordered by id.
	ListDatasets(ctx context.Context) ([]Dataset, error)
	// DeleteDataset removes a dataset with all its versions; ErrConflict
	// when a training job uses one of them (checked in the same
	// transaction, against CreateTrainingJob).
	DeleteDataset(ctx context.Context, id string) error
	DatasetVersion(ctx context.Context, id string, version int) (DatasetVersion, error)
	// ListDatasetVersions lists a dataset's versions, oldest first.
	ListDatasetVersions(ctx context.Context, id string) ([]DatasetVersion, error)
	// DeleteDatasetVersion removes one version; the dataset stays, even
	// with no version left. ErrConflict when a training job uses it
	// (checked in the same transaction, against CreateTrainingJob).
	DeleteDatasetVersion(ctx context.Context, id string, version int) error

	// CreateTrainingJob stores a new job; ErrConflict when the id exists,
	// ErrNotFound when its dataset version does not (it was deleted since
	// the caller looked: the check and the insert are one transaction, so
	// a racing deletion either comes first or sees the job and refuses).
	CreateTrainingJob(ctx context.Context, j TrainingJob) error
	TrainingJob(ctx context.Context, id string) (TrainingJob, error)
	// ListTrainingJobs lists jobs newest first (by id, which sorts by
	// creation).
	ListTrainingJobs(ctx context.Context, f TrainingJobFilter) ([]TrainingJob, error)
	// UpdateTrainingJob stores a job's state, error, events, result and
	// times if the stored job has not finished, and reports whether it
	// did: a job cancelled meanwhile stays cancelled.
	UpdateTrainingJob(ctx context.Context, j TrainingJob) (bool, error)
	// CancelTrainingJob marks a queued or running job cancelled and
	// reports whether it was one.
	CancelTrainingJob(ctx context.Context, id string, at time.Time) (bool, error)
	// DeleteTrainingJob removes a job's row.
	DeleteTrainingJob(ctx context.Context, id string) error
}
