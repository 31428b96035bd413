;;; nib-eglot.el --- nib's language server in eglot -*- lexical-binding: t; -*-

;; Emacs 29 or later (eglot built in). eglot has no inline completion
;; (ghost text): nib's suggestions come through completion-at-point, its
;; review findings through Flymake and `eglot-code-actions'. nib reviews a
;; file when it is opened and saved, and on `nib-eglot-review-file'.
;;
;;   (add-to-list 'load-path "~/src/nib/editors/emacs")
;;   (require 'nib-eglot)
;;   (setq nib-eglot-model "~/models/nib-small")
;;   ;; then M-x eglot in a Python, Rust, JS or TS buffer

;;; Code:

(require 'eglot)

(defgroup nib-eglot nil "nib's language server in eglot." :group 'eglot)

(defcustom nib-eglot-program "nib"
  "The nib binary: a name on `exec-path' or an absolute path."
  :type 'string)

(defcustom nib-eglot-model nil
  "Model folder; nil lets nib choose ($NIB_MODEL, then its own model)."
  :type '(choice (const nil) directory))

(defcustom nib-eglot-device "auto"
  "Execution provider: auto, cpu, cuda or cuda:N."
  :type 'string)

(defcustom nib-eglot-review t
  "Whether nib reviews files (on open, on save and on request).
Findings show through Flymake, with quick fixes in `eglot-code-actions'."
  :type 'boolean)

(defcustom nib-eglot-review-min-confidence nil
  "Hide review findings the model is less sure of than this (0 to 1).
nil keeps nib's default (sure findings only)."
  :type '(choice (const :tag "nib's default" nil) number))

(defcustom nib-eglot-modes
  '(python-mode python-ts-mode rust-mode rust-ts-mode js-mode js-ts-mode
    typescript-mode typescript-ts-mode)
  "Major modes in which eglot starts nib."
  :type '(repeat symbol))

(defun nib-eglot--contact (_interactive)
  "The command line and initializationOptions for nib."
  `(,nib-eglot-program "serve" "--stdio"
    :initializationOptions
    (:nib (:model ,(and nib-eglot-model (expand-file-name nib-eglot-model))
           :device ,nib-eglot-device
           :review (:enable ,(if nib-eglot-review t :json-false)
                    ,@(and nib-eglot-review-min-confidence
                           (list :minConfidence nib-eglot-review-min-confidence)))))))

(add-to-list 'eglot-server-programs (cons nib-eglot-modes #'nib-eglot--contact))

(defun nib-eglot-review-file ()
  "Ask nib to review the current file; findings arrive as diagnostics."
  (interactive)
  (let ((server (eglot-current-server)))
    (unless server (user-error "nib: no eglot server in this buffer"))
    ;; Answered once the review ended; the findings arrive as diagnostics.
    (let ((result (jsonrpc-request server :workspace/executeCommand
                                   `(:command "nib.reviewFile"
                                     :arguments [,(eglot-path-to-uri (buffer-file-name))]))))
      (when (equal (plist-get result :state) "published")
        (let ((n (plist-get result :findings)))
          (message "nib: review found %d issue%s" n (if (eql n 1) "" "s"))))
      result)))

(defun nib-eglot-status ()
  "Show nib's status (the `nib/status' request)."
  (interactive)
  (let* ((server (or (eglot-current-server) (user-error "nib: no eglot server in this buffer")))
         (s (jsonrpc-request server :nib/status nil)))
    (message "nib: %s%s%s" (plist-get s :state)
             (if (plist-get s :model) (format ", model %s" (plist-get s :model)) "")
             (if (plist-get s :device) (format ", on %s" (plist-get s :device)) ""))))

(provide 'nib-eglot)
;;; nib-eglot.el ends here
