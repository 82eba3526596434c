package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/millrace/millrace/server/store"
)

// Artifact names of the values the engine stores as artifacts.
const (
	artifactOutput = "output" // a node's output, or (node "") the run's
	artifactInput  = "input"  // a node's input
)

// artifactRef is what a checkpoint keeps in place of a value stored as an
// artifact: {"$artifact": "art_…", "size": N, "sha256": "…"}.
type artifactRef struct {
	Artifact string `json:"$artifact"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
}

var artifactIDPattern = regexp.MustCompile(`^art_[0-9a-f]{32}$`)

func newArtifactID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "art_" + hex.EncodeToString(b)
}

// parseRef reports whether doc has exactly the shape of an artifact
// reference. Whether it is one is decided against the store (resolve).
func parseRef(doc json.RawMessage) (artifactRef, bool) {
	var ref artifactRef
	if len(doc) > 512 || !bytes.Contains(doc, []byte(`"$artifact"`)) {
		return ref, false
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if dec.Decode(&ref) != nil || dec.More() || !artifactIDPattern.MatchString(ref.Artifact) {
		return ref, false
	}
	return ref, true
}

// keep returns doc as a checkpoint should hold it: doc itself when it is
// at most InlineBytes, else a reference to an artifact that now holds it.
// An artifact replaces the one of the same node and name, so a node that
// runs again leaves one.
func (x *Executor) keep(ctx context.Context, runID, nodeID, name string, doc json.RawMessage) (json.RawMessage, error) {
	if int64(len(doc)) <= x.Limits.WithDefaults().InlineBytes {
		return doc, nil
	}
	sum := sha256.Sum256(doc)
	a := store.Artifact{ID: newArtifactID(), RunID: runID, NodeID: nodeID, Name: name, ContentType: "application/json",
		Size: int64(len(doc)), SHA256: hex.EncodeToString(sum[:]), Data: doc}
	// Like checkpoints, artifacts must land while a run is being canceled.
	if err := x.store.PutArtifact(context.WithoutCancel(ctx), a); err != nil {
		return nil, fmt.Errorf("storing the %s of %s as an artifact: %w", name, describeNode(nodeID), err)
	}
	return json.Marshal(artifactRef{Artifact: a.ID, Size: a.Size, SHA256: a.SHA256})
}

func describeNode(nodeID string) string {
	if nodeID == "" {
		return "the run"
	}
	return "node " + nodeID
}

// output returns the value of a finished node's output: what the node
// produced, even when its checkpoint holds a reference to an artifact.
func (st *runState) output(ctx context.Context, n *store.NodeRun) (json.RawMessage, error) {
	st.mu.Lock()
	v, ok := st.values[n.NodeID]
	st.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := st.resolve(ctx, n.NodeID, n.Output)
	if err != nil {
		return nil, fmt.Errorf("output of %s: %w", n.NodeID, err)
	}
	st.mu.Lock()
	st.values[n.NodeID] = v
	st.mu.Unlock()
	return v, nil
}

// resolve returns what a checkpointed output stands for. A document is a
// reference only if it names the output artifact that this very node
// stored in this run; anything else is the node's value as it is. So a
// module that prints a reference reads nothing it did not write.
func (st *runState) resolve(ctx context.Context, nodeID string, doc json.RawMessage) (json.RawMessage, error) {
	ref, ok := parseRef(doc)
	if !ok {
		return doc, nil
	}
	a, err := st.store.Artifact(ctx, st.run.ID, ref.Artifact)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (a.NodeID != nodeID || a.Name != artifactOutput)) {
		return doc, nil
	}
	if err != nil {
		return nil, err
	}
	return a.Data, nil
}

// ArtifactView describes an artifact in a run view; its bytes are at URL.
type ArtifactView struct {
	ID          string    `json:"id"`
	Name        string    `json:"name" doc:"What it holds: the node's output or input, or the run's output."`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size" doc:"Bytes."`
	SHA256      string    `json:"sha256" doc:"Hex SHA-256 of the bytes."`
	URL         string    `json:"url" doc:"Where to download the bytes (scope workflows:read)."`
	CreatedAt   time.Time `json:"created_at"`
}

func artifactView(a store.Artifact) ArtifactView {
	return ArtifactView{ID: a.ID, Name: a.Name, ContentType: a.ContentType, Size: a.Size, SHA256: a.SHA256,
		URL: "/v1/runs/" + a.RunID + "/artifacts/" + a.ID, CreatedAt: a.CreatedAt}
}

// Artifact returns one artifact of a run with its bytes. An artifact of
// another run is not found.
func (r *Runs) Artifact(ctx context.Context, runID, id string) (store.Artifact, error) {
	a, err := r.store.Artifact(ctx, runID, id)
	if errors.Is(err, store.ErrNotFound) {
		return a, &NotFoundError{fmt.Sprintf("artifact %q of run %q", id, runID)}
	}
	return a, err
}

// copyArtifacts copies a node's artifacts from one run to another, for a
// checkpoint that a rerun reuses, and points the checkpoint's references
// at the copies: the new run must not depend on the old one, which
// retention may delete first.
func (r *Runs) copyArtifacts(ctx context.Context, from string, arts []store.Artifact, n *store.NodeRun) error {
	for _, meta := range arts {
		if meta.NodeID != n.NodeID {
			continue
		}
		a, err := r.store.Artifact(ctx, from, meta.ID)
		if err != nil {
			return err
		}
		a.ID, a.RunID, a.CreatedAt = newArtifactID(), n.RunID, time.Time{}
		if err := r.store.PutArtifact(ctx, a); err != nil {
			return err
		}
		for _, doc := range []*json.RawMessage{&n.Input, &n.Output} {
			if ref, ok := parseRef(*doc); ok && ref.Artifact == meta.ID {
				ref.Artifact = a.ID
				if *doc, err = json.Marshal(ref); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
