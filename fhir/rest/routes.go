package rest

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// routes registers every route of the server: this is the one place to
// read what the HTTP API is.
func (s *Server) routes(e *echo.Echo) {
	e.Pre(middleware.RemoveTrailingSlash())
	e.Use(s.recover, s.observe)

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	if s.metrics != nil {
		e.GET("/metrics", echo.WrapHandler(s.metrics.Handler()))
	}

	// Public: the CapabilityStatement (clients discover the server with it).
	e.GET("/fhir/metadata", s.metadata, s.negotiate)

	// Everything else under /fhir needs a token. Middleware is given per
	// route, not to a Group: an Echo group with middleware answers 404 to
	// every unknown method, hiding the router's 405.
	fhir := func(method, path string, h echo.HandlerFunc) {
		e.Add(method, "/fhir"+path, h, s.negotiate, s.authenticate, s.traced)
	}
	fhir(http.MethodPost, "", s.transactionOrBatch)
	fhir(http.MethodGet, "", s.systemSearch)
	fhir(http.MethodGet, "/_history", s.historySystem)

	fhir(http.MethodGet, "/:type", s.search)
	fhir(http.MethodPost, "/:type/_search", s.searchPost)
	fhir(http.MethodPost, "/:type", binaryOr(s.create, s.createBinary))
	fhir(http.MethodPut, "/:type", s.conditionalUpdate)
	fhir(http.MethodDelete, "/:type", s.conditionalDelete)
	fhir(http.MethodGet, "/:type/_history", s.historyType)

	fhir(http.MethodGet, "/:type/:id", binaryOr(s.read, s.readBinary))
	fhir(http.MethodHead, "/:type/:id", binaryOr(s.read, s.readBinary))
	fhir(http.MethodPut, "/:type/:id", binaryOr(s.update, s.updateBinary))
	fhir(http.MethodPatch, "/:type/:id", s.patch)
	fhir(http.MethodDelete, "/:type/:id", s.delete)
	fhir(http.MethodGet, "/:type/:id/_history", s.historyInstance)
	fhir(http.MethodGet, "/:type/:id/_history/:vid", binaryOr(s.vread, s.vreadBinary))
	fhir(http.MethodGet, "/:type/:id/:ctype", s.compartmentSearch)

	// Operations.
	fhir(http.MethodPost, "/:type/$validate", s.validate)
	fhir(http.MethodPost, "/:type/:id/$validate", s.validate)
	fhir(http.MethodGet, "/:type/:id/$everything", s.everything)
	fhir(http.MethodPost, "/:type/:id/$everything", s.everything)
	fhir(http.MethodPost, "/:type/:id/$close", s.closeRecord)
	fhir(http.MethodPost, "/:type/:id/$reopen", s.reopenRecord)
	fhir(http.MethodGet, "/$duty-report", s.dutyReport)

	// Unknown paths (404) and known paths with another method (405, with
	// Allow) come from Echo's router as errors; the error handler turns
	// them into OperationOutcomes.
}
