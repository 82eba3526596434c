package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/millrace/millrace/accel/training"
	"github.com/millrace/millrace/accel/trainjob"
)

// The training endpoints, beside the protocol (not part of OIP v2):
//
//	POST /v2/training/jobs                     start (or resume) a job: trainjob.StartRequest
//	GET  /v2/training/jobs                     every job's status
//	GET  /v2/training/jobs/{id}                one job's status
//	GET  /v2/training/jobs/{id}/events?after=N long-poll: answers when the job
//	                                           has more than N epochs or ended
//	                                           (or after wait, default 25s)
//	POST /v2/training/jobs/{id}/cancel         cancel; the checkpoint stays
const maxLongPoll = 60 * time.Second

func (s *Service) trainingRoutes() {
	if s.cfg.Jobs == nil {
		return
	}
	// One path, two methods: handle takes one method per path.
	s.mux.HandleFunc("/v2/training/jobs", func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			s.startJob(w, r)
		case http.MethodGet, http.MethodHead:
			s.listJobs(w, r)
		default:
			w.Header().Set("Allow", "GET, POST")
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s is not allowed; use GET or POST", r.Method, r.URL.Path))
		}
	})
	s.handle(http.MethodGet, "/v2/training/jobs/{id}", s.getJob)
	s.handle(http.MethodGet, "/v2/training/jobs/{id}/events", s.jobEvents)
	s.handle(http.MethodPost, "/v2/training/jobs/{id}/cancel", s.cancelJob)
}

// fieldError is the body of a 422: the field at fault and why.
type fieldError struct {
	Error string `json:"error"`
	Field string `json:"field"`
}

func (s *Service) startJob(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "training job request over 1 MiB")
		return
	}
	var req trainjob.StartRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "malformed training job: "+err.Error())
		return
	}
	st, err := s.cfg.Jobs.Start(req.ID, req.Spec)
	var ferr *trainjob.FieldError
	switch {
	case errors.As(err, &ferr):
		writeJSON(w, http.StatusUnprocessableEntity, fieldError{Error: ferr.Error(), Field: ferr.Field})
		return
	case errors.Is(err, training.ErrBadID):
		writeJSON(w, http.StatusUnprocessableEntity, fieldError{Error: err.Error(), Field: "id"})
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, st)
}

func (s *Service) listJobs(w http.ResponseWriter, r *http.Request) {
	jobs := s.cfg.Jobs.List()
	slices.SortFunc(jobs, func(a, b trainjob.Status) int { return strings.Compare(a.ID, b.ID) })
	writeJSON(w, http.StatusOK, map[string]any{"jobs": jobs})
}

func (s *Service) getJob(w http.ResponseWriter, r *http.Request) {
	st, ok := s.cfg.Jobs.Get(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no training job %q in this process (a restarted service forgets jobs: start it again to resume from its checkpoint)", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Service) jobEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, err := strconv.Atoi(q.Get("after"))
	if q.Get("after") == "" {
		after, err = 0, nil
	}
	if err != nil || after < 0 {
		writeError(w, http.StatusBadRequest, "after must be a non-negative number of epochs")
		return
	}
	wait := 25 * time.Second
	if v := q.Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 || wait > maxLongPoll {
			writeError(w, http.StatusBadRequest, "wait must be a duration between 0s and 60s")
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	st, ok := s.cfg.Jobs.Wait(ctx, r.PathValue("id"), after)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no training job %q in this process", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Service) cancelJob(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.Jobs.Cancel(r.PathValue("id")) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no training job %q in this process", r.PathValue("id")))
		return
	}
	st, _ := s.cfg.Jobs.Get(r.PathValue("id"))
	writeJSON(w, http.StatusAccepted, st)
}
