package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/datasets"
)

type datasetUploadForm struct {
	File huma.FormFile `form:"file" required:"true" doc:"The data: CSV or TSV with a header row, JSONL (one object per line), plain text (one example per line as label<TAB>text), or a zip of such files in which a folder's name labels the lines of the .txt files inside it. UTF-8."`
}

// DatasetImportParams are the query parameters of an upload.
type DatasetImportParams struct {
	Format             string   `query:"format" enum:"csv,tsv,jsonl,txt,zip" doc:"The file's format; by default its extension, else its first bytes, tell."`
	TextColumn         string   `query:"text_column" maxLength:"200" doc:"The column holding the texts. By default a column named text, body, message, content, email, sentence, document, review or msg (any case), else the column with the longest values."`
	LabelColumn        string   `query:"label_column" maxLength:"200" doc:"The column holding the labels. By default a column named label, class, category, target, spam, labels, sentiment or y, else the column with the fewest distinct values."`
	Seed               int64    `query:"seed" doc:"Seed of the train/validation split. A row goes to validation when a hash of the seed and its normalised text falls under validation_fraction: the same file and seed split the same way, in any row order, and duplicates stay on one side."`
	ValidationFraction float64  `query:"validation_fraction" default:"0.2" exclusiveMinimum:"0" maximum:"0.5" doc:"Share of rows held out for validation."`
	Redact             []string `query:"redact" enum:"email,phone,ip" doc:"Personal data to replace at import, before anything is stored: email → [email], phone → [phone], ip (IPv4 and IPv6) → [ip]. Comma-separated."`
}

type createDatasetInput struct {
	Name string `query:"name" maxLength:"200" doc:"The dataset's name; by default the file's name without its extension."`
	DatasetImportParams
	RawBody huma.MultipartFormFiles[datasetUploadForm]
}

type addVersionInput struct {
	DatasetPath
	DatasetImportParams
	RawBody huma.MultipartFormFiles[datasetUploadForm]
}

// DatasetPath names a dataset.
type DatasetPath struct {
	ID string `path:"id" pattern:"^ds_[0-9a-f]{12}$" doc:"Dataset id."`
}

// DatasetVersionPath names a dataset version.
type DatasetVersionPath struct {
	ID      string `path:"id" pattern:"^ds_[0-9a-f]{12}$" doc:"Dataset id."`
	Version int    `path:"version" minimum:"1" doc:"Version number."`
}

type datasetVersionOutput struct {
	Body *datasets.Meta
}

type datasetOutput struct {
	Body *datasets.Dataset
}

type listDatasetsOutput struct {
	Body struct {
		Datasets []datasets.Dataset `json:"datasets"`
	}
}

type rowsInput struct {
	DatasetVersionPath
	Split  string `query:"split" enum:"train,validation" default:"train" doc:"Which split to page through."`
	Offset int    `query:"offset" minimum:"0" default:"0"`
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"50"`
}

type rowsOutput struct {
	Body struct {
		Split  string             `json:"split"`
		Offset int                `json:"offset"`
		Total  int                `json:"total" doc:"Rows in the split."`
		Rows   []datasets.Example `json:"rows"`
	}
}

const uploadDoc = " The upload is streamed to a temporary file and checked whole before anything is kept: a bad file gets a problem naming the file (inside a zip), line and column, and leaves nothing behind. " +
	"Zips with unsafe names (.., absolute paths, backslashes), links, nested archives, too many entries or too much decompressed data are refused. " +
	"Texts and labels must be non-empty; there must be 2 to 1000 labels. The version's files are written to the server's disk (train.jsonl, validation.jsonl, meta.json) and never change."

func registerDatasets(api huma.API, d *Deps) {
	importOpts := func(p DatasetImportParams) datasets.ImportOptions {
		return datasets.ImportOptions{Format: p.Format, TextColumn: p.TextColumn, LabelColumn: p.LabelColumn, Seed: p.Seed, ValidationFraction: p.ValidationFraction, Redact: p.Redact}
	}
	doImport := func(ctx context.Context, form huma.FormFile, opt datasets.ImportOptions) (*datasetVersionOutput, error) {
		if d.Datasets == nil {
			return nil, noDatasets()
		}
		if form.File == nil {
			return nil, huma.Error422UnprocessableEntity("file: is required", &huma.ErrorDetail{Location: "body.file", Message: "is required"})
		}
		defer form.File.Close()
		opt.Filename = form.Filename
		v, err := d.Datasets.Import(ctx, form.File, form.Size, opt)
		if err != nil {
			return nil, problem(ctx, err)
		}
		return &datasetVersionOutput{Body: &v.Meta}, nil
	}

	huma.Register(api, secured(huma.Operation{
		OperationID: "create-dataset", Method: http.MethodPost, Path: "/v1/datasets", Tags: []string{"datasets"},
		Summary:       "Upload a file as a new dataset (its version 1)",
		Description:   "Imports labelled texts: detects or takes the text and label columns, optionally redacts personal data, splits train/validation by seed, and computes statistics." + uploadDoc,
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity, http.StatusServiceUnavailable},
	}, auth.ScopeDatasetsWrite), func(ctx context.Context, in *createDatasetInput) (*datasetVersionOutput, error) {
		opt := importOpts(in.DatasetImportParams)
		opt.Name = in.Name
		return doImport(ctx, in.RawBody.Data().File, opt)
	})

	huma.Register(api, secured(huma.Operation{
		OperationID: "create-dataset-version", Method: http.MethodPost, Path: "/v1/datasets/{id}/versions", Tags: []string{"datasets"},
		Summary:       "Upload a file as a dataset's next version",
		Description:   "Like create-dataset, for an existing dataset: the new version takes the next number; earlier versions stay as they are." + uploadDoc,
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusNotFound, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity, http.StatusServiceUnavailable},
	}, auth.ScopeDatasetsWrite), func(ctx context.Context, in *addVersionInput) (*datasetVersionOutput, error) {
		opt := importOpts(in.DatasetImportParams)
		opt.DatasetID = in.ID
		return doImport(ctx, in.RawBody.Data().File, opt)
	})

	huma.Register(api, secured(huma.Operation{
		OperationID: "list-datasets", Method: http.MethodGet, Path: "/v1/datasets", Tags: []string{"datasets"},
		Summary: "List datasets", Errors: []int{http.StatusServiceUnavailable},
	}, auth.ScopeDatasetsRead), func(ctx context.Context, _ *struct{}) (*listDatasetsOutput, error) {
		if d.Datasets == nil {
			return nil, noDatasets()
		}
		list, err := d.Datasets.List(ctx)
		if err != nil {
			return nil, problem(ctx, err)
		}
		out := &listDatasetsOutput{}
		out.Body.Datasets = list
		return out, nil
	})

	huma.Register(api, secured(huma.Operation{
		OperationID: "get-dataset", Method: http.MethodGet, Path: "/v1/datasets/{id}", Tags: []string{"datasets"},
		Summary: "Get a dataset with its versions", Errors: []int{http.StatusNotFound, http.StatusServiceUnavailable},
	}, auth.ScopeDatasetsRead), func(ctx context.Context, in *DatasetPath) (*datasetOutput, error) {
		if d.Datasets == nil {
			return nil, noDatasets()
		}
		ds, err := d.Datasets.Get(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, err)
		}
		return &datasetOutput{Body: &ds}, nil
	})

	huma.Register(api, secured(huma.Operation{
		OperationID: "get-dataset-version", Method: http.MethodGet, Path: "/v1/datasets/{id}/versions/{version}", Tags: []string{"datasets"},
		Summary: "Get a dataset version: columns, labels, split and statistics", Errors: []int{http.StatusNotFound, http.StatusServiceUnavailable},
	}, auth.ScopeDatasetsRead), func(ctx context.Context, in *DatasetVersionPath) (*datasetVersionOutput, error) {
		if d.Datasets == nil {
			return nil, noDatasets()
		}
		v, err := d.Datasets.Version(ctx, in.ID, in.Version)
		if err != nil {
			return nil, problem(ctx, err)
		}
		return &datasetVersionOutput{Body: &v.Meta}, nil
	})

	huma.Register(api, secured(huma.Operation{
		OperationID: "list-dataset-rows", Method: http.MethodGet, Path: "/v1/datasets/{id}/versions/{version}/rows", Tags: []string{"datasets"},
		Summary:     "Preview a version's rows",
		Description: "Pages through one split as stored (after redaction), in the uploaded order.",
		Errors:      []int{http.StatusNotFound, http.StatusServiceUnavailable},
	}, auth.ScopeDatasetsRead), func(ctx context.Context, in *rowsInput) (*rowsOutput, error) {
		if d.Datasets == nil {
			return nil, noDatasets()
		}
		rows, total, err := d.Datasets.Rows(ctx, in.ID, in.Version, in.Split, in.Offset, in.Limit)
		if err != nil {
			return nil, problem(ctx, err)
		}
		out := &rowsOutput{}
		out.Body.Split, out.Body.Offset, out.Body.Total, out.Body.Rows = in.Split, in.Offset, total, rows
		return out, nil
	})

	huma.Register(api, secured(huma.Operation{
		OperationID: "delete-dataset", Method: http.MethodDelete, Path: "/v1/datasets/{id}", Tags: []string{"datasets"},
		Summary:       "Delete a dataset with all its versions",
		Description:   "Refused (409) while a training job uses one of its versions.",
		DefaultStatus: http.StatusNoContent, Errors: []int{http.StatusNotFound, http.StatusConflict, http.StatusServiceUnavailable},
	}, auth.ScopeDatasetsWrite), func(ctx context.Context, in *DatasetPath) (*struct{}, error) {
		if d.Datasets == nil {
			return nil, noDatasets()
		}
		return nil, problem(ctx, d.Datasets.Delete(ctx, in.ID))
	})

	huma.Register(api, secured(huma.Operation{
		OperationID: "delete-dataset-version", Method: http.MethodDelete, Path: "/v1/datasets/{id}/versions/{version}", Tags: []string{"datasets"},
		Summary:       "Delete one version of a dataset",
		Description:   "Its number is never given to another version. Refused (409) while a training job uses it.",
		DefaultStatus: http.StatusNoContent, Errors: []int{http.StatusNotFound, http.StatusConflict, http.StatusServiceUnavailable},
	}, auth.ScopeDatasetsWrite), func(ctx context.Context, in *DatasetVersionPath) (*struct{}, error) {
		if d.Datasets == nil {
			return nil, noDatasets()
		}
		return nil, problem(ctx, d.Datasets.DeleteVersion(ctx, in.ID, in.Version))
	})
}

func noDatasets() error {
	return huma.Error503ServiceUnavailable("this server keeps no datasets")
}

// datasetProblem words a datasets.Error as a problem: the status from its
// kind, and a detail locating the fault (the field, and the file, line and
// column in the message).
func datasetProblem(e *datasets.Error) error {
	status := map[datasets.Kind]int{
		datasets.KindInvalid:  http.StatusUnprocessableEntity,
		datasets.KindTooLarge: http.StatusRequestEntityTooLarge,
		datasets.KindNotFound: http.StatusNotFound,
		datasets.KindConflict: http.StatusConflict,
	}[e.Kind]
	if e.Field == "" {
		return huma.NewError(status, e.Error())
	}
	return huma.NewError(status, e.Error(), &huma.ErrorDetail{Location: e.Field, Message: e.Error()})
}
