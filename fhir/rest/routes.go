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
	pub := e.Group("/fhir", s.negotiate)
	pub.GET("/metadata", s.metadata)

	f := e.Group("/fhir", s.negotiate, s.authenticate)
	f.POST("", s.transactionOrBatch)
	f.GET("", s.notImplementedSystemSearch)
	f.GET("/_history", s.historySystem)

	f.GET("/:type", s.search)
	f.POST("/:type", s.create)
	f.PUT("/:type", s.conditionalUpdate)
	f.DELETE("/:type", s.conditionalDelete)
	f.GET("/:type/_history", s.historyType)

	f.GET("/:type/:id", s.read)
	f.HEAD("/:type/:id", s.read)
	f.PUT("/:type/:id", s.update)
	f.PATCH("/:type/:id", s.patch)
	f.DELETE("/:type/:id", s.delete)
	f.GET("/:type/:id/_history", s.historyInstance)
	f.GET("/:type/:id/_history/:vid", s.vread)

	// Every other path under /fhir is a 404 OperationOutcome.
	f.RouteNotFound("/*", func(c echo.Context) error { return echo.ErrNotFound })
	e.RouteNotFound("/*", func(c echo.Context) error { return echo.NewHTTPError(http.StatusNotFound) })
}
