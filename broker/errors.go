package broker

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/pivotal-cf/brokerapi/v10/domain/apiresponses"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/store"
)

// Failures this broker answers beyond brokerapi's own (apiresponses.Err*).
var (
	// ErrInstanceNotFound: 404 for GET instance, last_operation and update on an unknown id.
	ErrInstanceNotFound = apiresponses.NewFailureResponseBuilder(
		errors.New("instance does not exist"), http.StatusNotFound, "instance-not-found").Build()
	// ErrInstanceProvisioning: GET instance while it is being provisioned (OSB 2.17: 404).
	ErrInstanceProvisioning = apiresponses.NewFailureResponseBuilder(
		errors.New("instance is being provisioned"), http.StatusNotFound, "instance-provisioning").Build()
	// ErrBindingNotFound: 404 for a binding last_operation on an unknown binding (OSB 2.17).
	ErrBindingNotFound = apiresponses.NewFailureResponseBuilder(
		errors.New("binding does not exist"), http.StatusNotFound, "binding-not-found").Build()
)

func badRequest(format string, args ...any) error {
	return apiresponses.NewFailureResponse(fmt.Errorf(format, args...), http.StatusBadRequest, "bad-request")
}

func unprocessable(errorKey, format string, args ...any) error {
	return apiresponses.NewFailureResponseBuilder(fmt.Errorf(format, args...), http.StatusUnprocessableEntity, "unprocessable").
		WithErrorKey(errorKey).Build()
}

func conflict(format string, args ...any) error {
	return apiresponses.NewFailureResponse(fmt.Errorf(format, args...), http.StatusConflict, "conflict")
}

// parameterFailure maps a catalog validation error to a 400 naming the key.
func parameterFailure(err error) error {
	var pe *catalog.ParameterError
	if errors.As(err, &pe) {
		return badRequest("%s", pe.Msg)
	}
	return err
}

// dependencyFailure is a 500 whose message names the dependency that failed,
// or a 400 when the state database refused a value the request carried.
func dependencyFailure(what string, err error) error {
	if errors.Is(err, store.ErrInvalidValue) {
		return badRequest("%s: %v: send UTF-8 text without NUL characters", what, err)
	}
	return apiresponses.NewFailureResponse(fmt.Errorf("%s: %w", what, err), http.StatusInternalServerError, "dependency-failure")
}
