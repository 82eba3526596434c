package storetest

import (
	"context"
	"sync"
	"testing"

	"github.com/millrace/millrace/server/store"
	"github.com/stretchr/testify/require"
)

// exerciseModels is the part of the suite about the model registry.
func exerciseModels(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("Models", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		_, err := s.Model(ctx, "arith")
		require.ErrorIs(t, err, store.ErrNotFound)
		list, err := s.ListModels(ctx)
		require.NoError(t, err)
		require.Empty(t, list)

		created, err := s.PutModel(ctx, store.Model{Name: "arith", Path: "/models/arith.onnx", Description: "adds", Version: "1"})
		require.NoError(t, err)
		require.True(t, created)
		created, err = s.PutModel(ctx, store.Model{Name: "ocr_det", Path: "/models/ocr_det"})
		require.NoError(t, err)
		require.True(t, created)

		first, err := s.Model(ctx, "arith")
		require.NoError(t, err)
		require.Equal(t, "/models/arith.onnx", first.Path)
		require.Equal(t, "adds", first.Description)
		require.Equal(t, "1", first.Version)
		require.False(t, first.CreatedAt.IsZero())
		require.Equal(t, first.CreatedAt, first.UpdatedAt)

		created, err = s.PutModel(ctx, store.Model{Name: "arith", Path: "/models/v2/arith.onnx", Version: "2"})
		require.NoError(t, err)
		require.False(t, created, "a second registration replaces the first")
		got, err := s.Model(ctx, "arith")
		require.NoError(t, err)
		require.Equal(t, "/models/v2/arith.onnx", got.Path)
		require.Equal(t, "", got.Description, "the registration is replaced whole")
		require.Equal(t, "2", got.Version)
		require.True(t, first.CreatedAt.Equal(got.CreatedAt), "the creation time stays")
		require.False(t, got.UpdatedAt.Before(got.CreatedAt))

		// A remote accelerator's model has no path.
		_, err = s.PutModel(ctx, store.Model{Name: "b-remote"})
		require.NoError(t, err)

		list, err = s.ListModels(ctx)
		require.NoError(t, err)
		var names []string
		for _, m := range list {
			names = append(names, m.Name)
		}
		require.Equal(t, []string{"arith", "b-remote", "ocr_det"}, names, "ordered by name, bytewise")

		require.NoError(t, s.DeleteModel(ctx, "arith"))
		require.ErrorIs(t, s.DeleteModel(ctx, "arith"), store.ErrNotFound)
		_, err = s.Model(ctx, "arith")
		require.ErrorIs(t, err, store.ErrNotFound)
	})

	t.Run("ModelsConcurrentPut", func(t *testing.T) {
		t.Parallel()
		s, ctx := newStore(t), context.Background()
		var wg sync.WaitGroup
		results := make(chan bool, 8)
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				created, err := s.PutModel(ctx, store.Model{Name: "same", Path: "/m.onnx"})
				if err != nil {
					errs <- err
					return
				}
				results <- created
			})
		}
		wg.Wait()
		close(results)
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		n := 0
		for created := range results {
			if created {
				n++
			}
		}
		require.Equal(t, 1, n, "exactly one registration creates the model")
	})
}
