package storetest

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/millrace/millrace/server/store"
	"github.com/stretchr/testify/require"
)

// exerciseDatasets is the part of the suite about datasets and their
// immutable versions.
func exerciseDatasets(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("Datasets", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		_, err := s.Dataset(ctx, "ds_1")
		require.ErrorIs(t, err, store.ErrNotFound)
		list, err := s.ListDatasets(ctx)
		require.NoError(t, err)
		require.Empty(t, list)

		meta := json.RawMessage(`{"id":"ds_1","version":1,"labels":["ham","spam"]}`)
		require.NoError(t, s.CreateDatasetVersion(ctx, store.Dataset{ID: "ds_1", Name: "mail"}, store.DatasetVersion{DatasetID: "ds_1", Version: 1, Rows: 10, Meta: meta}))
		require.ErrorIs(t, s.CreateDatasetVersion(ctx, store.Dataset{ID: "ds_1", Name: "mail"}, store.DatasetVersion{DatasetID: "ds_1", Version: 1, Rows: 3, Meta: meta}), store.ErrConflict,
			"versions are immutable")
		require.NoError(t, s.CreateDatasetVersion(ctx, store.Dataset{ID: "ds_1", Name: "renamed"}, store.DatasetVersion{DatasetID: "ds_1", Version: 2, Rows: 12, Meta: json.RawMessage(`{"version":2}`)}))
		require.NoError(t, s.CreateDatasetVersion(ctx, store.Dataset{ID: "ds_0", Name: "other"}, store.DatasetVersion{DatasetID: "ds_0", Version: 1, Rows: 1, Meta: json.RawMessage(`{}`)}))

		d, err := s.Dataset(ctx, "ds_1")
		require.NoError(t, err)
		require.Equal(t, "mail", d.Name, "a later version keeps the dataset's name")
		require.Equal(t, 2, d.LatestVersion)
		require.Equal(t, 3, d.NextVersion)
		require.False(t, d.CreatedAt.IsZero())

		list, err = s.ListDatasets(ctx)
		require.NoError(t, err)
		require.Len(t, list, 2)
		require.Equal(t, "ds_0", list[0].ID, "ordered by id")
		require.Equal(t, 1, list[0].LatestVersion)

		v, err := s.DatasetVersion(ctx, "ds_1", 1)
		require.NoError(t, err)
		require.Equal(t, int64(10), v.Rows)
		require.JSONEq(t, string(meta), string(v.Meta))
		require.False(t, v.CreatedAt.IsZero())
		_, err = s.DatasetVersion(ctx, "ds_1", 3)
		require.ErrorIs(t, err, store.ErrNotFound)

		versions, err := s.ListDatasetVersions(ctx, "ds_1")
		require.NoError(t, err)
		require.Len(t, versions, 2)
		require.Equal(t, 1, versions[0].Version, "oldest first")
		require.Equal(t, 2, versions[1].Version)

		require.NoError(t, s.DeleteDatasetVersion(ctx, "ds_1", 2))
		require.ErrorIs(t, s.DeleteDatasetVersion(ctx, "ds_1", 2), store.ErrNotFound)
		d, err = s.Dataset(ctx, "ds_1")
		require.NoError(t, err)
		require.Equal(t, 1, d.LatestVersion)
		require.Equal(t, 3, d.NextVersion, "a deleted version's number is not given again")
		require.NoError(t, s.DeleteDatasetVersion(ctx, "ds_1", 1))
		d, err = s.Dataset(ctx, "ds_1")
		require.NoError(t, err, "a dataset outlives its versions")
		require.Equal(t, 0, d.LatestVersion)

		require.NoError(t, s.CreateDatasetVersion(ctx, store.Dataset{ID: "ds_1"}, store.DatasetVersion{DatasetID: "ds_1", Version: 3, Rows: 1, Meta: json.RawMessage(`{}`)}))
		require.NoError(t, s.DeleteDataset(ctx, "ds_1"))
		require.ErrorIs(t, s.DeleteDataset(ctx, "ds_1"), store.ErrNotFound)
		versions, err = s.ListDatasetVersions(ctx, "ds_1")
		require.NoError(t, err)
		require.Empty(t, versions, "versions go with their dataset")
		_, err = s.DatasetVersion(ctx, "ds_1", 3)
		require.ErrorIs(t, err, store.ErrNotFound)

		// An import numbered before the dataset was deleted does not
		// bring it back.
		require.ErrorIs(t, s.CreateDatasetVersion(ctx, store.Dataset{ID: "ds_1", Name: "mail"}, store.DatasetVersion{DatasetID: "ds_1", Version: 4, Rows: 1, Meta: json.RawMessage(`{}`)}), store.ErrNotFound)
		_, err = s.Dataset(ctx, "ds_1")
		require.ErrorIs(t, err, store.ErrNotFound)
	})

	t.Run("DatasetVersionsConcurrent", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				errs <- s.CreateDatasetVersion(ctx, store.Dataset{ID: "ds_c", Name: "c"}, store.DatasetVersion{DatasetID: "ds_c", Version: 1, Rows: 1, Meta: json.RawMessage(`{}`)})
			})
		}
		wg.Wait()
		close(errs)
		won := 0
		for err := range errs {
			if err == nil {
				won++
				continue
			}
			require.ErrorIs(t, err, store.ErrConflict)
		}
		require.Equal(t, 1, won, "exactly one upload gets a version number")
	})
}
